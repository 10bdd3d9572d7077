# Assay's default admission policy (`assay policy check` uses it when no --policy is
# given; `assay policy show` prints it). Copy it and edit it to make your own.
#
# Contract with `assay policy check`:
#   data.assay.deny        set of strings: every reason to refuse; the model is admitted
#                          when it is empty
#   data.assay.warn        set of strings (optional): reported, never refuse
#   data.assay.suppressed  set of objects (optional): findings let through, and by what
#
# The input document (`assay policy input TARGET` prints it):
#   input.report           the JSON scan report (`assay scan --format json`)
#   input.signature        {present, verified, path, signer: {method, key_hint, curve},
#                           error, modified, added, removed}
#   input.attestation      the same for a signed scan attestation, plus `scan` (the record)
#   input.suppressions     [{id, rule, path, reason, expires}] from --suppressions
#   input.now              the time of the check, RFC 3339 UTC (`2026-01-31T12:00:00Z`)
#
# Settings (data.config, from --data FILE.json; all optional):
#   fail_on             lowest severity that refuses the model         (default "high")
#   require_complete    every stage must have run on every file        (default true)
#   require_signature   a verified model signature or attestation      (default false)
#   trusted_keys        key hints (hex SHA-256 of the public key PEM, printed by
#                       `assay verify`) or certificate fingerprints allowed to sign;
#                       empty means any key given with --key           (default [])
package assay

import rego.v1

severity_rank := {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

stages := ["malware", "network", "vulnerability", "backdoor", "integrity", "tensor"]

default fail_on := "high"

fail_on := data.config.fail_on

default require_complete := true

require_complete := data.config.require_complete

default require_signature := false

require_signature := data.config.require_signature

default trusted_keys := []

trusted_keys := data.config.trusted_keys

# --- suppressions -------------------------------------------------------------------

# A suppression is in force until the start (00:00 UTC) of its expiry date.
expired(s) if s.expires <= input.now

# It covers a finding with its rule, in its path (exact, or a folder ending in "/";
# no path means anywhere).
covers(s, f) if {
	s.rule == f.rule
	not s.path
}

covers(s, f) if {
	s.rule == f.rule
	s.path == f.path
}

covers(s, f) if {
	s.rule == f.rule
	endswith(s.path, "/")
	startswith(f.path, s.path)
}

suppressed_by(f) := s.id if {
	some s in input.suppressions
	not expired(s)
	covers(s, f)
}

suppressed contains {"rule": f.rule, "path": f.path, "severity": f.severity, "suppression": id} if {
	some f in input.report.findings
	id := suppressed_by(f)
}

# --- findings -----------------------------------------------------------------------

location(f) := sprintf("%s!/%s", [f.path, f.member]) if f.member

location(f) := f.path if not f.member

deny contains msg if {
	some f in input.report.findings
	severity_rank[f.severity] >= severity_rank[fail_on]
	not suppressed_by(f)
	msg := sprintf("%s finding %s in %s: %s", [f.severity, f.rule, location(f), f.message])
}

# --- completeness -------------------------------------------------------------------

deny contains msg if {
	require_complete
	some stage in stages
	status := object.get(input.report.summary.stages, stage, "not_run")
	status != "complete"
	msg := sprintf("scan incomplete: stage %s is %s", [stage, status])
}

deny contains msg if {
	require_complete
	some file in input.report.files
	file.status == "incomplete"
	msg := sprintf("scan incomplete: %s could not be analysed completely", [file.path])
}

deny contains "scan incomplete: no files were scanned" if {
	require_complete
	count(input.report.files) == 0
}

# --- signature ----------------------------------------------------------------------

signed_by_trusted(sig) if {
	sig.verified
	count(trusted_keys) == 0
}

signed_by_trusted(sig) if {
	sig.verified
	sig.signer.key_hint in trusted_keys
}

signature_ok if signed_by_trusted(input.signature)

signature_ok if signed_by_trusted(input.attestation)

deny contains msg if {
	require_signature
	not signature_ok
	msg := sprintf("not signed: %s", [signature_problem])
}

default signature_problem := "no verified signature or scan attestation from a trusted key"

signature_problem := sprintf("signature %s does not verify: %s", [input.signature.path, input.signature.error]) if {
	input.signature.present
	not input.signature.verified
	input.signature.error
}

signature_problem := sprintf("signed by key %s, which is not in trusted_keys", [input.signature.signer.key_hint]) if {
	input.signature.verified
	not signed_by_trusted(input.signature)
}

# --- reports on the suppressions themselves ----------------------------------------

warn contains msg if {
	some s in input.suppressions
	expired(s)
	msg := sprintf("suppression %s (%s) expired on %s; it no longer applies", [s.id, s.rule, s.expires])
}

warn contains msg if {
	some s in input.suppressions
	not expired(s)
	not matches_any(s)
	msg := sprintf("suppression %s (%s) matches no finding; remove it", [s.id, s.rule])
}

matches_any(s) if {
	some f in input.report.findings
	covers(s, f)
}
