# suites: e2e
# summary: targetcli rejects bad user:vlun cfgstrings with vlun's reason; nothing is created
#
# tcmu-runner calls the handler's check_config over D-Bus before anything
# is created; targetcli shows "cfgstring invalid: <reason>". Each case must
# show vlun's reason (naming what is wrong) and leave no device in configfs.

# attempt NAME CFGSTRING PATTERN : create must fail, the output must match
# PATTERN (vlun's reason) and configfs must not have NAME
attempt() {
	local name=$1 cfg=$2 pattern=$3 out
	out=$(echo "/backstores/user:vlun create name=$name size=64M cfgstring=$cfg" | tcli)
	echo "$out"
	say "      cfgstring '$cfg' -> $(grep -iE 'invalid|fail|error' <<<"$out" | head -n1)"
	check "'$cfg' is rejected with a reason" contains "$out" 'cfgstring invalid: *[^ ]'
	check "'$cfg': the reason names the problem (/$pattern/)" contains "$out" "$pattern"
	check "'$cfg': no device $name in configfs" eq "$(configfs_dev "$name")" ""
}

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "bad cfgstrings are rejected" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	step "a pool with a vdisk, and tcmu-runner"
	must pool_create pool0 256M 2
	must vlunctl vdisk create "$POOL_DIR" good --size 64M --thin
	must runner_start

	step "bad cfgstrings"
	attempt bad1 "relative/pool/vd" 'absolute|relative|/'
	attempt bad2 "/var/lib/vlun/nosuchpool/vd" 'nosuchpool'
	attempt bad3 "$POOL_DIR/nosuchdisk" 'nosuchdisk'
	attempt bad4 "$POOL_DIR/good;bogus=1" 'bogus'
	attempt bad5 "$POOL_DIR/" 'vdisk|name|empty'

	step "a good cfgstring still works"
	local out
	out=$(echo "/backstores/user:vlun create name=good size=64M cfgstring=$POOL_DIR/good" | tcli)
	echo "$out"
	check "the good cfgstring creates the device" sh -c "[ -n '$(configfs_dev good)' ]"
}
