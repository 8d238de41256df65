package change

import (
	"slices"
	"strings"
)

// Account types of GitHub's user objects.
const (
	TypeUser = "User"
	TypeBot  = "Bot"
)

// WriterRoles are the repository roles whose approvals count, as they do
// for GitHub's own required reviews.
var WriterRoles = []string{"admin", "maintain", "write"}

// IsWriter reports whether role is one of WriterRoles.
func IsWriter(role string) bool { return slices.Contains(WriterRoles, strings.ToLower(role)) }

// IsBot reports whether an account is an app's bot: type Bot, or a login
// ending in "[bot]" as every app's login does.
func IsBot(login, accountType string) bool {
	return strings.EqualFold(accountType, TypeBot) || strings.HasSuffix(strings.ToLower(login), "[bot]")
}

// NotCounted says why approval a does not count towards a change whose pull
// request author is author, or returns "" when it counts:
//
//   - "author of the pull request": nobody approves their own change;
//   - "app": a bot, unless trustedBots names it (then it counts as is);
//   - "not a user (Organization)": any other account that is no person;
//   - "read access", "no access", "unknown access": a reviewer without
//     write, maintain or admin on the repository.
//
// Logins compare case-insensitively. The built-in policy convoy.lib makes
// the same decision in Rego (TestNotCountedMatchesRego keeps them equal);
// whether an approval of an older commit counts is the policies' call.
func NotCounted(a Approval, author string, trustedBots []string) string {
	switch {
	case author != "" && strings.EqualFold(a.User, author):
		return "author of the pull request"
	case IsBot(a.User, a.Type):
		if slices.ContainsFunc(trustedBots, func(b string) bool { return strings.EqualFold(b, a.User) }) {
			return ""
		}
		return "app"
	case a.Type != "" && !strings.EqualFold(a.Type, TypeUser):
		return "not a user (" + a.Type + ")"
	case IsWriter(a.Permission):
		return ""
	case a.Permission == "":
		return "unknown access"
	case strings.EqualFold(a.Permission, "none"):
		return "no access"
	}
	return strings.ToLower(a.Permission) + " access"
}

// Counted returns the approvals of ch that count (see NotCounted).
func Counted(ch *Change, trustedBots []string) []Approval {
	if ch == nil {
		return nil
	}
	author := ""
	if ch.PullRequest != nil {
		author = ch.PullRequest.Author
	}
	var out []Approval
	for _, a := range ch.Approvals {
		if NotCounted(a, author, trustedBots) == "" {
			out = append(out, a)
		}
	}
	return out
}
