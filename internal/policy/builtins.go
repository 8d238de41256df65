package policy

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The builtins a policy may call, in one place: an allowlist, so that a
// builtin a newer OPA adds is refused until it is reviewed here
// (TestEveryBuiltinIsClassified fails until then). Policies judge the input
// and the data, nothing else: no network, no host, no clock but input.now,
// no randomness. A policy that calls any other builtin does not compile,
// and so denies every cluster naming its file and line.

// allowedBuiltins are the builtins policies may call.
var allowedBuiltins = []string{
	"abs", "all", "and", "any", "array.concat", "array.flatten", "array.reverse", "array.slice",
	"assign", "base64.decode", "base64.encode", "base64.is_valid", "base64url.decode",
	"base64url.encode", "base64url.encode_no_pad", "bits.and", "bits.lsh", "bits.negate", "bits.or",
	"bits.rsh", "bits.xor", "cast_array", "cast_boolean", "cast_null", "cast_object", "cast_set",
	"cast_string", "ceil", "concat", "contains", "count", "crypto.hmac.equal", "crypto.hmac.md5",
	"crypto.hmac.sha1", "crypto.hmac.sha256", "crypto.hmac.sha512", "crypto.md5",
	"crypto.parse_private_keys", "crypto.sha1", "crypto.sha256",
	"crypto.x509.parse_certificate_request", "crypto.x509.parse_certificates",
	"crypto.x509.parse_keypair", "crypto.x509.parse_rsa_private_key", "div", "endswith", "eq",
	"equal", "floor", "format_int", "glob.match", "glob.quote_meta", "graph.reachable",
	"graph.reachable_paths", "graphql.is_valid", "graphql.parse", "graphql.parse_and_verify",
	"graphql.parse_query", "graphql.parse_schema", "graphql.schema_is_valid", "gt", "gte",
	"hex.decode", "hex.encode", "indexof", "indexof_n", "internal.member_2", "internal.member_3",
	"internal.print", "internal.template_string", "internal.test_case", "intersection",
	"io.jwt.decode", "io.jwt.encode_sign", "io.jwt.encode_sign_raw", "io.jwt.verify_eddsa",
	"io.jwt.verify_es256", "io.jwt.verify_es384", "io.jwt.verify_es512", "io.jwt.verify_hs256",
	"io.jwt.verify_hs384", "io.jwt.verify_hs512", "io.jwt.verify_ps256", "io.jwt.verify_ps384",
	"io.jwt.verify_ps512", "io.jwt.verify_rs256", "io.jwt.verify_rs384", "io.jwt.verify_rs512",
	"is_array", "is_boolean", "is_null", "is_number", "is_object", "is_set", "is_string",
	"json.filter", "json.is_valid", "json.marshal", "json.marshal_with_options", "json.match_schema",
	"json.patch", "json.remove", "json.unmarshal", "json.verify_schema", "lower", "lt", "lte", "max",
	"min", "minus", "mul", "neq", "numbers.range", "numbers.range_step", "object.filter",
	"object.get", "object.keys", "object.remove", "object.subset", "object.union", "object.union_n",
	"or", "plus", "print", "product", "re_match", "regex.find_all_string_submatch_n", "regex.find_n",
	"regex.globs_match", "regex.is_valid", "regex.match", "regex.replace", "regex.split",
	"regex.template_match", "rego.metadata.chain", "rego.metadata.rule", "rego.parse_module", "rem",
	"replace", "round", "semver.compare", "semver.is_valid", "set_diff", "sort", "split", "sprintf",
	"startswith", "strings.any_prefix_match", "strings.any_suffix_match", "strings.count",
	"strings.render_template", "strings.replace_n", "strings.reverse", "strings.split_n", "substring",
	"sum", "time.add_date", "time.clock", "time.date", "time.diff", "time.format",
	"time.parse_duration_ns", "time.parse_ns", "time.parse_rfc3339_ns", "time.weekday", "to_number",
	"trace", "trim", "trim_left", "trim_prefix", "trim_right", "trim_space", "trim_suffix",
	"type_name", "union", "units.parse", "units.parse_bytes", "upper", "uri.is_valid", "uri.parse",
	"urlquery.decode", "urlquery.decode_object", "urlquery.encode", "urlquery.encode_object",
	"uuid.parse", "walk", "yaml.is_valid", "yaml.marshal", "yaml.unmarshal",
}

// deniedBuiltins are the builtins policies may not call, and why.
var deniedBuiltins = map[string]string{
	"http.send":                 "reaches the network",
	"net.lookup_ip_addr":        "reaches the network (DNS)",
	"net.cidr_contains":         "net.*: the network builtins are refused as a family",
	"net.cidr_contains_matches": "net.*",
	"net.cidr_expand":           "net.*",
	"net.cidr_intersects":       "net.*",
	"net.cidr_is_valid":         "net.*",
	"net.cidr_merge":            "net.*",
	"net.cidr_overlap":          "net.*",
	"opa.runtime":               "reads the host's environment",
	"time.now_ns":               "reads the host clock: policies use input.now, which --now sets",
	"rand.intn":                 "not reproducible",
	"uuid.rfc4122":              "not reproducible",
	"providers.aws.sign_req":    "signs requests for the network, with the host clock",
	"crypto.x509.parse_and_verify_certificates":              "verifies against the host clock",
	"crypto.x509.parse_and_verify_certificates_with_options": "verifies against the host clock",
	"io.jwt.decode_verify":                                   "verifies against the host clock unless told the time",
}

// capabilities are OPA's capabilities with allowedBuiltins only, and no
// host for http.send even if it were allowed.
func capabilities() *ast.Capabilities {
	all := ast.CapabilitiesForThisVersion()
	allowed := make(map[string]bool, len(allowedBuiltins))
	for _, name := range allowedBuiltins {
		allowed[name] = true
	}
	c := *all
	c.Builtins = nil
	for _, b := range all.Builtins {
		if allowed[b.Name] {
			c.Builtins = append(c.Builtins, b)
		}
	}
	c.AllowNet = []string{}
	return &c
}

// builtinPackages are the packages the built-in policies declare (and
// convoy.config, the policy data): repository policies may not declare
// them, nor packages under them, nor package convoy itself.
func builtinPackages(modules map[string]*ast.Module) []ast.Ref {
	refs := []ast.Ref{ast.MustParseRef("data.convoy.config")}
	for name, m := range modules {
		if strings.HasPrefix(name, BuiltinPrefix) && !strings.HasSuffix(name, "_test.rego") {
			refs = append(refs, m.Package.Path)
		}
	}
	return refs
}

// checkRepoPackage refuses a repository module that would extend or
// replace a built-in package: in Rego a package is open, so a module
// declaring package convoy.approvals adds rules to the built-in one (an
// approver it invents, a rollback check that always holds) and could
// lift a deny.
func checkRepoPackage(m *ast.Module, builtins []ast.Ref) *ast.Error {
	p := m.Package.Path
	if p.Equal(ast.MustParseRef("data.convoy")) {
		return ast.NewError(ast.CompileErr, m.Package.Location, "package convoy is convoy's own: repository policies declare packages of their own, such as convoy.team_rules")
	}
	for _, b := range builtins {
		if p.HasPrefix(b) {
			return ast.NewError(ast.CompileErr, m.Package.Location, "package %s is built in: repository policies may add packages of their own only, never extend one of convoy's (%s)",
				strings.TrimPrefix(p.String(), "data."), strings.TrimPrefix(b.String(), "data."))
		}
	}
	return nil
}
