package apply

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestSecretMasker(t *testing.T) {
	u := &unstructured.Unstructured{}
	doc := "apiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\ndata: {password: aHVudGVyMi1zM2NyM3Q=}\nstringData: {token: tok-123456}\n"
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	m := newSecretMasker([]*unstructured.Unstructured{u})
	base := errors.New("root")
	err := m.wrap(&wrapped{msg: `Secret "db" is invalid: data[password]: aHVudGVyMi1zM2NyM3Q= decoded hunter2-s3cr3t, token tok-123456 (` + base64Of("tok-123456") + ")", err: base})
	msg := err.Error()
	for _, secret := range []string{"aHVudGVyMi1zM2NyM3Q=", "hunter2-s3cr3t", "tok-123456", base64Of("tok-123456")} {
		if strings.Contains(msg, secret) {
			t.Errorf("message %q still contains %q", msg, secret)
		}
	}
	if !strings.Contains(msg, `Secret "db" is invalid: data[password]: ***`) {
		t.Errorf("message %q lost its context", msg)
	}
	if !errors.Is(err, base) {
		t.Error("masking broke errors.Is")
	}
	if plain := errors.New("nothing secret"); m.wrap(plain) != plain {
		t.Error("an error without secrets was rewrapped")
	}
}

type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

func base64Of(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
