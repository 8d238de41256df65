package apply

import (
	"encoding/base64"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Masked replaces Secret values in messages.
const Masked = "***"

// secretMasker replaces the values of the Secrets being applied, as written
// and base64-decoded, wherever they appear in a message: API server
// rejections and apply errors may quote an object.
type secretMasker struct{ values []string }

func newSecretMasker(objs []*unstructured.Unstructured) *secretMasker {
	set := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "Secret" || o.GroupVersionKind().Group != "" {
			continue
		}
		data, _, _ := unstructured.NestedMap(o.Object, "data")
		for _, v := range data {
			s, _ := v.(string)
			set[s] = true
			if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
				set[string(dec)] = true
			}
		}
		str, _, _ := unstructured.NestedMap(o.Object, "stringData")
		for _, v := range str {
			s, _ := v.(string)
			set[s] = true
			set[base64.StdEncoding.EncodeToString([]byte(s))] = true
		}
	}
	m := &secretMasker{}
	for v := range set {
		if len(v) >= 4 { // shorter values would mask ordinary words
			m.values = append(m.values, v)
		}
	}
	// Longest first, so a value containing another is masked whole.
	sort.Slice(m.values, func(i, j int) bool { return len(m.values[i]) > len(m.values[j]) })
	return m
}

func (m *secretMasker) mask(msg string) string {
	for _, v := range m.values {
		msg = strings.ReplaceAll(msg, v, Masked)
	}
	return msg
}

// maskedError keeps the wrapped error for errors.Is/As but masks its text.
type maskedError struct {
	msg string
	err error
}

func (e *maskedError) Error() string { return e.msg }
func (e *maskedError) Unwrap() error { return e.err }

func (m *secretMasker) wrap(err error) error {
	if err == nil || len(m.values) == 0 {
		return err
	}
	masked := m.mask(err.Error())
	if masked == err.Error() {
		return err
	}
	return &maskedError{msg: masked, err: err}
}

// Masker replaces the values of a set of Secrets (as written, base64 and
// decoded) with Masked in any text: policy messages, plans, comments.
type Masker struct{ m *secretMasker }

// NewMasker masks the values of the Secrets among objs.
func NewMasker(objs []*unstructured.Unstructured) *Masker {
	return &Masker{m: newSecretMasker(objs)}
}

// Mask returns s with every Secret value replaced by Masked.
func (m *Masker) Mask(s string) string { return m.m.mask(s) }
