package change_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/convoy-gitops/convoy/internal/change"
)

func TestParseTrailers(t *testing.T) {
	tests := []struct {
		name    string
		message string
		want    []change.Trailer
	}{
		{
			name:    "last paragraph of trailers",
			message: "Scale web\n\nMore replicas.\n\nChange-Category: major\nApproved-by: Bob <bob@example.com>\n",
			want:    []change.Trailer{{Key: "Change-Category", Value: "major"}, {Key: "Approved-by", Value: "Bob <bob@example.com>"}},
		},
		{
			name:    "title only is never trailers",
			message: "Approved-by: bob\n",
		},
		{
			name:    "a paragraph with a prose line is not trailers",
			message: "Scale web\n\nApproved-by: bob\nthanks everyone\n",
		},
		{
			name:    "trailers not in the last paragraph are ignored",
			message: "Scale web\n\nApproved-by: bob\n\nSome words at the end.\n",
		},
		{
			name:    "continuation lines are joined",
			message: "T\n\nApproved-by: Bob\n  <bob@example.com>\nChange-Category:\n\tmajor\n",
			want:    []change.Trailer{{Key: "Approved-by", Value: "Bob <bob@example.com>"}, {Key: "Change-Category", Value: "major"}},
		},
		{
			name:    "a continuation line first is not trailers",
			message: "T\n\n  Approved-by: bob\n",
		},
		{
			name:    "CRLF, trailing blank lines, space before the colon",
			message: "T\r\n\r\nApproved-by : bob\r\nSigned-off-by: Alice <a@x>\r\n\r\n\r\n",
			want:    []change.Trailer{{Key: "Approved-by", Value: "bob"}, {Key: "Signed-off-by", Value: "Alice <a@x>"}},
		},
		{
			name:    "a token with other characters is not a trailer",
			message: "T\n\nApproved by: bob\n",
		},
		{
			name:    "blank line of spaces separates paragraphs",
			message: "T\n   \nApproved-by: bob\n",
			want:    []change.Trailer{{Key: "Approved-by", Value: "bob"}},
		},
		{name: "empty", message: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, change.ParseTrailers(tt.message)); diff != "" {
				t.Errorf("ParseTrailers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestChangeFromMessage(t *testing.T) {
	const rev = "abc123"
	const author = "Alice <alice@example.com>"
	tests := []struct {
		name      string
		message   string
		category  string
		approvers []string
		wantError string
	}{
		{name: "no trailers: normal, no approvals", message: "Fix\n\nJust a fix.", category: change.Normal},
		{
			name:      "category and approvals",
			message:   "Fix\n\nchange-category: Emergency\nApproved-by: Bob <bob@example.com>\nAPPROVED-BY: carol",
			category:  change.Emergency,
			approvers: []string{"Bob <bob@example.com>", "carol"},
		},
		{
			name:      "duplicates counted once, by email or name",
			message:   "Fix\n\nApproved-by: Bob <bob@example.com>\nApproved-by: Robert <BOB@example.com>\nApproved-by: carol\nApproved-by: Carol",
			category:  change.Normal,
			approvers: []string{"Bob <bob@example.com>", "carol"},
		},
		{
			name:      "the author's own approval is ignored",
			message:   "Fix\n\nApproved-by: Alice <alice@example.com>\nApproved-by: alice@example.com\nApproved-by: alice\nApproved-by: Alice <other@example.com>",
			category:  change.Normal,
			approvers: []string{"Alice <other@example.com>"},
		},
		{name: "empty approval ignored", message: "Fix\n\nApproved-by:", category: change.Normal},
		{name: "same category twice", message: "Fix\n\nChange-Category: major\nChange-Category: MAJOR", category: change.Major},
		{name: "two categories", message: "Fix\n\nChange-Category: major\nChange-Category: normal", wantError: "commit abc123: conflicting change categories major, normal"},
		{name: "unknown category", message: "Fix\n\nChange-Category: yolo", wantError: `commit abc123: unknown change category "yolo"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := change.ChangeFromMessage(rev, author, tt.message)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) || !errors.Is(err, change.ErrInvalidCategory) {
					t.Fatalf("error = %v, want ErrInvalidCategory containing %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := &change.Change{
				Revision:         rev,
				Category:         tt.category,
				Approvals:        []change.Approval{},
				ChangesRequested: []string{},
				Commit:           change.Commit{SHA: rev, Author: author, Message: tt.message},
			}
			for _, a := range tt.approvers {
				want.Approvals = append(want.Approvals, change.Approval{User: a, CommitID: rev, Permission: "write", Type: change.TypeUser, Teams: []string{}})
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("change (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTrailersSource(t *testing.T) {
	commits := map[string][2]string{
		"c1": {"Roll out\n\nChange-Category: standard\nApproved-by: bob", "Alice <alice@example.com>"},
	}
	var src change.Source = change.NewTrailers(func(_ context.Context, rev string) (string, string, error) {
		c, ok := commits[rev]
		if !ok {
			return "", "", errors.New("object not found")
		}
		return c[0], c[1], nil
	})
	got, err := src.Change(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Category != change.Standard || len(got.Approvals) != 1 || got.Approvals[0].User != "bob" || got.PullRequest != nil || got.Commit.Verified {
		t.Errorf("change = %+v, want standard, approved by bob, no pull request, unverified", got)
	}
	_, err = src.Change(context.Background(), "nope")
	if err == nil || err.Error() != "read commit nope: object not found" {
		t.Errorf("error = %v, want read commit nope: object not found", err)
	}
}

func FuzzParseTrailers(f *testing.F) {
	for _, s := range []string{
		"",
		"T\n\nApproved-by: bob\n",
		"T\n\nChange-Category: major\nApproved-by: Bob\n  <bob@example.com>\n",
		"T\r\n\r\nA : b\r\n",
		"\n\n\nA: b",
		"T\n \t\nA:\n\tcontinued",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		got := change.ParseTrailers(msg)
		if diff := cmp.Diff(got, change.ParseTrailers(msg)); diff != "" {
			t.Fatalf("ParseTrailers is not stable (-first +second):\n%s", diff)
		}
		if len(got) == 0 {
			return
		}
		// Written back as a trailer block, the trailers parse to themselves.
		var b strings.Builder
		b.WriteString("Title\n\n")
		for _, tr := range got {
			if tr.Key == "" || strings.ContainsAny(tr.Value, "\n") {
				t.Fatalf("bad trailer %q from %q", tr, msg)
			}
			b.WriteString(tr.Key + ": " + tr.Value + "\n")
		}
		if diff := cmp.Diff(got, change.ParseTrailers(b.String())); diff != "" {
			t.Fatalf("round trip of %q (-want +got):\n%s", msg, diff)
		}
		// Building a change from the message never panics.
		_, _ = change.ChangeFromMessage("rev", "A <a@x>", msg)
	})
}
