# suites: e2e
# summary: a pool member missing at open: a clear error naming it, no half-created device
#
# A pool of two member files with a vdisk; one member file is moved away
# before the backstore is created. Creation must fail, say which member is
# missing (in targetcli's answer or tcmu-runner's log), and leave nothing in
# configfs. With the member back, the same create works.

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "a missing member is reported" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	step "a pool of two members with a vdisk; member1 moved away"
	must pool_create pool0 256M 2
	must vlunctl vdisk create "$POOL_DIR" vd0 --size 128M --thin
	must mv "$POOL_DIR/member1" /var/lib/vlun/member1.away
	must runner_start

	step "create the backstore with member1 missing"
	local out log
	out=$(echo "/backstores/user:vlun create name=vd0 size=128M cfgstring=$POOL_DIR/vd0" | tcli)
	echo "$out"
	sleep 1
	log=$(cat "$LAB_SDIR"/runner*/tcmu-runner.log 2>/dev/null)
	say "      targetcli: $(grep -iE 'invalid|fail|error' <<<"$out" | head -n1)"
	say "      tcmu-runner.log: $(grep -iE 'member|missing|vlun' <<<"$log" | grep -iE 'err|fail|miss' | tail -n1)"
	check "targetcli reports that the creation failed" contains "$out" 'fail|invalid|error'
	check "the error names the missing member (targetcli or tcmu-runner.log)" \
		contains "$out$log" 'member1|missing member|member.*(missing|not found)'
	check "no half-created device vd0 in configfs" eq "$(configfs_dev vd0)" ""
	check "tcmu-runner still runs" runner_running

	step "member1 back: the same create works"
	must mv /var/lib/vlun/member1.away "$POOL_DIR/member1"
	out=$(echo "/backstores/user:vlun create name=vd0 size=128M cfgstring=$POOL_DIR/vd0" | tcli)
	echo "$out"
	check "with every member present the device is created" sh -c "[ -n \"\$(ls -d /sys/kernel/config/target/core/*/vd0 2>/dev/null)\" ]"

	# The device exists in LIO; tcmu-runner restarts and must open it again
	# (open, not check_config) while member1 is gone.
	step "member1 missing when a restarted tcmu-runner opens the existing device"
	must runner_stop
	must mv "$POOL_DIR/member1" /var/lib/vlun/member1.away
	must runner_start
	sleep 2
	log=$(cat "$(ls "$LAB_SDIR"/tcmu-runner*.log | sort -V | tail -n1)")
	echo "$log"
	say "      tcmu-runner.log: $(grep -iE 'vlun' <<<"$log" | grep -iE 'miss|cannot|fail' | tail -n1)"
	check "tcmu-runner's log says why vd0 cannot open, naming member1" \
		contains "$log" 'vlun.*(member1|member 1).*(missing|not found)|vlun.*missing.*member1'
	check "tcmu-runner survives the failed open" runner_running

	step "member1 back, tcmu-runner restarted: vd0 opens"
	must runner_stop
	must mv /var/lib/vlun/member1.away "$POOL_DIR/member1"
	must runner_start
	sleep 2
	log=$(cat "$(ls "$LAB_SDIR"/tcmu-runner*.log | sort -V | tail -n1)")
	echo "$log"
	check "tcmu-runner opened vd0 again" contains "$log" "opened virtual disk 'vd0'"
}
