# suites: e2e
# summary: targetcli rejects bad user:vlun cfgstrings with vlun's reason; nothing is created
#
# tcmu-runner calls the handler's check_config over D-Bus before anything
# is created; targetcli shows "cfgstring invalid: <reason>". Each case must
# show vlun's reason (naming what is wrong) and leave no device in configfs.

# CASES: name, cfgstring, what vlun's reason must match
CASES=(
	"bad1|relative/pool/vd|absolute|relative|/"
	"bad2|/var/lib/vlun/nosuchpool/vd|nosuchpool"
	"bad3|/var/lib/vlun/pool0/nosuchdisk|nosuchdisk"
	"bad4|/var/lib/vlun/pool0/good;bogus=1|bogus"
	"bad5|/var/lib/vlun/pool0/|vdisk|name|empty"
	"bad6|/var/lib/vlun/pool0/good;rw|rw.*snapshots only"
	"bad7|/var/lib/vlun/pool0/good@nosnap|no snapshot .nosnap."
	"bad8|/var/lib/vlun/pool0/good@s;rw;ro|contradict"
	"bad9|/var/lib/vlun/pool0/good@|snapshot name.*missing"
	"bad10|/var/lib/vlun/pool0/nosrc@s|no virtual disk .nosrc."
)

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "bad cfgstrings are rejected" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	step "a pool with a vdisk, and tcmu-runner"
	must pool_create pool0 256M 2
	must vlunctl vdisk create "$POOL_DIR" good --size 64M --thin
	must runner_start

	step "bad cfgstrings, then a good one (one targetcli session)"
	local c cmds=() name cfg pattern out i=0 answers
	for c in "${CASES[@]}"; do
		IFS='|' read -r name cfg _ <<<"$c"
		cmds+=("/backstores/user:vlun create name=$name size=64M cfgstring=$cfg")
	done
	cmds+=("/backstores/user:vlun create name=good size=64M cfgstring=$POOL_DIR/good")
	answers=$(tcli_each "${cmds[@]}")
	echo "$answers"
	for c in "${CASES[@]}"; do
		i=$((i + 1))
		name=${c%%|*}; cfg=${c#*|}; pattern=${cfg#*|}; cfg=${cfg%%|*}
		out=$(awk -F'\t' -v n=$i '$1 == n { print $2 }' <<<"$answers")
		say "      cfgstring '$cfg' -> $out"
		check "'$cfg' is rejected with a reason" contains "$out" 'cfgstring invalid: *[^ ]'
		check "'$cfg': the reason names the problem (/$pattern/)" contains "$out" "$pattern"
		check "'$cfg': no device $name in configfs" eq "$(configfs_dev "$name")" ""
	done

	out=$(awk -F'\t' -v n=$((i + 1)) '$1 == n { print $2 }' <<<"$answers")
	say "      cfgstring '$POOL_DIR/good' -> $out"
	check "the good cfgstring creates the device" sh -c "[ -n '$(configfs_dev good)' ]"
}
