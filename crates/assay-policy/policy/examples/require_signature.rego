# Admit only models signed (`assay sign`) by a release key, on top of the default rules.
#
#   assay policy check MODEL --policy require_signature.rego --key release.pub.pem \
#       --data release-keys.json
#
# release-keys.json: {"release_keys": ["<key hint printed by assay sign / assay verify>"]}
package assay

import rego.v1

deny contains "model is not signed (no model.sig; sign it with `assay sign`)" if {
	not input.signature.present
}

deny contains msg if {
	input.signature.present
	not input.signature.verified
	msg := sprintf("signature %s does not verify: %s", [input.signature.path, input.signature.error])
}

deny contains msg if {
	input.signature.verified
	not input.signature.signer.key_hint in data.release_keys
	msg := sprintf("signed by key %s, which is not a release key", [input.signature.signer.key_hint])
}

# Keep the scanner's verdict too: nothing at or above high.
deny contains msg if {
	some f in input.report.findings
	f.severity in {"high", "critical"}
	msg := sprintf("%s finding %s in %s: %s", [f.severity, f.rule, f.path, f.message])
}
