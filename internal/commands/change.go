package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/convoy-gitops/convoy/internal/change"
)

// loadChange reads --change FILE, filling the revision from the checkout
// when the file leaves it empty. Without a file, the change is read from the
// commit's trailers when the fleet's change source is trailers.
func loadChange(_ context.Context, co *checkout, file string) (*change.Change, error) {
	if file == "" {
		return nil, fmt.Errorf("--change: required until the change sources are wired in (pass a change JSON file)")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--change: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var ch change.Change
	if err := dec.Decode(&ch); err != nil {
		return nil, fmt.Errorf("--change %s: %w", file, err)
	}
	if ch.Category == "" {
		return nil, fmt.Errorf("--change %s: category: required", file)
	}
	if ch.Revision == "" {
		ch.Revision = co.Revision
	}
	if ch.Commit.SHA == "" {
		ch.Commit.SHA = co.Revision
	}
	return &ch, nil
}
