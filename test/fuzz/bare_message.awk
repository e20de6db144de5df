# the bare "cannot affect row a second time" of ON CONFLICT or MERGE, in an
# error whose statement or context is one of the extension's calls: a
# random MERGE or INSERT ... ON CONFLICT of sqlsmith's own says it too
function flush() {
	if (group != "" && group ~ /idempotent_|replace_(partition|table|where)|ledger_|pg_idempotent/) {
		printf "%s", group
		found = 1
	}
	group = ""
	pid = ""
}
/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / {
	match($0, /\[[0-9]+\]/)
	p = substr($0, RSTART, RLENGTH)
	if (pid != "" && p == pid && $0 ~ /(HINT|DETAIL|LOCATION|CONTEXT|STATEMENT):/) {
		group = group $0 "\n"
		next
	}
	flush()
	if ($0 ~ /cannot affect row a second time/) {
		pid = p
		group = $0 "\n"
	}
	next
}
{
	if (pid != "")
		group = group $0 "\n"
}
END {
	flush()
	exit found ? 0 : 1
}
