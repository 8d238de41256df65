package change

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Source finds the change request behind a revision.
type Source interface {
	// Change returns the change that brought revision to the branch being rolled out.
	Change(ctx context.Context, revision string) (*Change, error)
}

// LabelPrefix starts a pull-request label that names the change's category,
// as in "change/major".
const LabelPrefix = "change/"

// ErrInvalidCategory is matched (errors.Is) by every error about a change's
// stated category; callers deny such a change.
var ErrInvalidCategory = errors.New("invalid change category")

// ConflictingCategories is the error for a change that states more than one category.
type ConflictingCategories struct {
	Where      string   // what stated them: "acme/fleet-config#42" or "commit 1a2b3c4"
	Categories []string // the categories stated, sorted
}

func (e *ConflictingCategories) Error() string {
	return fmt.Sprintf("%s: conflicting change categories %s: state exactly one", e.Where, strings.Join(e.Categories, ", "))
}

// Is makes errors.Is(err, ErrInvalidCategory) true.
func (e *ConflictingCategories) Is(target error) bool { return target == ErrInvalidCategory }

// UnknownCategory is the error for a change that states a category convoy does not know.
type UnknownCategory struct {
	Where string // what stated it
	Value string // the category as stated
}

func (e *UnknownCategory) Error() string {
	return fmt.Sprintf("%s: unknown change category %q: expected one of %s", e.Where, e.Value, strings.Join(Categories(), ", "))
}

// Is makes errors.Is(err, ErrInvalidCategory) true.
func (e *UnknownCategory) Is(target error) bool { return target == ErrInvalidCategory }

// Categories lists the categories a change may state, in order of rising risk.
func Categories() []string { return []string{Emergency, Standard, Normal, Major} }

// ParseCategory returns the category named by value (case-insensitive), or an
// *UnknownCategory naming where.
func ParseCategory(where, value string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(value))
	for _, c := range Categories() {
		if v == c {
			return c, nil
		}
	}
	return "", &UnknownCategory{Where: where, Value: value}
}

// categoryOf returns the one category that values state, Normal when they state
// none, and an error when one is unknown or two differ.
func categoryOf(where string, values []string) (string, error) {
	seen := map[string]bool{}
	for _, v := range values {
		c, err := ParseCategory(where, v)
		if err != nil {
			return "", err
		}
		seen[c] = true
	}
	switch len(seen) {
	case 0:
		return Normal, nil
	case 1:
		for c := range seen {
			return c, nil
		}
	}
	cats := make([]string, 0, len(seen))
	for c := range seen {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	return "", &ConflictingCategories{Where: where, Categories: cats}
}

// CategoryFromLabels returns the category that a pull request's labels state
// with change/<category>: Normal without such a label, an *UnknownCategory for
// change/<something else> and a *ConflictingCategories for two different ones.
// where names the pull request in errors.
func CategoryFromLabels(where string, labels []string) (string, error) {
	var values []string
	for _, l := range labels {
		if len(l) >= len(LabelPrefix) && strings.EqualFold(l[:len(LabelPrefix)], LabelPrefix) {
			values = append(values, l[len(LabelPrefix):])
		}
	}
	return categoryOf(where, values)
}
