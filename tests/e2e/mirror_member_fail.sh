# suites: e2e mirror
# summary: a mirrored vdisk loses a member under fio verify (dm-error, then dm-flakey): no host error, resync copies only what is behind
#
# The pool's two members are device-mapper devices (dm-linear over loop
# devices), so a member can fail while tcmu-runner holds it: its table is
# swapped for dm-error or dm-flakey and back. A linear vdisk on member 0 is
# mirrored onto member 1 (vlunctl mirror add, through the holder's control
# channel) and exported over two iSCSI portals and multipath.
#
# Case A: while fio writes the disk sequentially with crc32c verify headers,
#   member 1 (the second copies) becomes dm-error. fio must see no error and
#   verify every block; `vlunctl pool show` must report member 1 FAILED and
#   how much is behind. Member 1 back (dm-linear): the job thread's probe
#   marks it OK within ~10 s and the resync copies exactly the bytes that
#   were behind; then both copies are compared byte for byte.
# Case B: the same with member 0 (the primaries) on dm-flakey (up 4 s,
#   down 3 s), so it fails, answers a probe, fails again during its resync,
#   and so on; fio writes new data (another seed). Then dm-linear again, in
#   sync, copies identical, and a last fio verify-only pass over the disk.

SIZE=64M
SIZE_B=$((64 * 1048576))
MEMBER_SIZE=96M
RATE=1m                       # A: ~64 s of writes; the failure comes after 16 MiB
RATE_B=3m
SEED_B=4242                   # B writes other data than A
SPEC=$POOL_DIR                # symlinks m0, m1 -> /dev/mapper/vlm0, vlm1

pool_json() { vlunctl pool show "$SPEC" --json; }
member_state() { vjson "d['members'][$1]['state']" pool_json; }
behind_bytes() { vjson "d['vdisks'][0]['behind_bytes']" pool_json; }
mirror_state() { vjson "d['vdisks'][0]['mirror_state']" pool_json; }
member_is() { [ "$(member_state "$1")" = "$2" ]; }
# the holder's own view (vlunctl stats asks tcmu-runner): member $1's state
holder_member_state() { vjson "[m['state'] for m in d['members'] if m['index'] == $1][0]" vlunctl stats "$SPEC" --json; }
holder_member_is() { [ "$(holder_member_state "$1")" = "$2" ]; }
# vlunctl pool show (the metadata on the members) says member $1 failed
pool_show_failed() {
	local out; out=$(vlunctl pool show "$SPEC" 2>&1)
	echo "$out"
	grep -qE "^ +$1 +failed|$1\\(FAILED\\)" <<<"$out"
}
in_sync() { [ "$(mirror_state)" = in-sync ] && [ "$(behind_bytes)" = 0 ]; }

# MiB the host has written to the multipath map (the kernel's counters)
map_written_mb() {
	local dm; dm=$(basename "$(readlink -f "/dev/mapper/$MAP")")
	awk '{ print int($7 / 2048) }' "/sys/block/$dm/stat"
}
map_written_ge() { [ "$(map_written_mb)" -ge $(($1 + W0)) ]; }

# tcmu-runner's log lines since line $1 matching $2
runner_log() { ls "$LAB_SDIR"/tcmu-runner*.log | sort -V | tail -n1; }
log_lines() { wc -l <"$(runner_log)"; }
log_since() { tail -n +"$(($1 + 1))" "$(runner_log)" | grep -E -- "$2"; }
# sum of "resync done: N bytes copied" since line $1
resync_copied_since() { log_since "$1" 'resync done: [0-9]+ bytes copied' | sed -E 's/.*resync done: ([0-9]+) bytes.*/\1/' | awk '{ s += $1 } END { print s + 0 }'; }

# fio_run JSON extra... : fio_job over the map with JSON output; prints the counts
fio_run() {
	local json=$1; shift
	fio_job /dev/mapper/$MAP $SIZE --output-format=json --output="$json" "$@"
}
# fio_clean JSON : exit 0 implied by the caller; no error, every block verified
fio_clean() {
	local c; c=$(fio_json_counts "$1") || return 1
	echo "error total_err writes write_bytes reads read_bytes = $c"
	set -- $c
	[ "$1" = 0 ] && [ "$2" = 0 ] && [ "$4" = $SIZE_B ] && [ "$6" = $SIZE_B ]
}
# no I/O error on the multipath map in the kernel log since the marker $1
no_map_errors() {
	local dm; dm=$(basename "$(readlink -f "/dev/mapper/$MAP")")
	! dmesg | sed -n "/$1/,\$p" | grep -E "I/O error, dev $dm|Buffer I/O error on dev $dm"
}


# wait for fio (pid $1) at most $2 s
fio_wait() {
	local n=0
	while kill -0 "$1" 2>/dev/null && [ $n -lt $(($2 * 2)) ]; do sleep 0.5; n=$((n + 1)); done
	if kill -0 "$1" 2>/dev/null; then
		say "      fio still runs after $2 s: killing it"
		kill -TERM "$1"
	fi
	wait "$1"
}

scenario_main() {
	if [ "$LAB_BACKEND" != vlun ]; then
		skip "a mirror member fails under fio verify" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	local t json rc c behind copied start_line t_ok n

	step "two dm-linear members over loop devices; pool, linear vdisk lin0 ($SIZE) on member 0"
	must dm_members_create vlm $MEMBER_SIZE 2
	must mkdir -p "$POOL_DIR"
	must ln -s /dev/mapper/vlm0 "$POOL_DIR/m0"
	must ln -s /dev/mapper/vlm1 "$POOL_DIR/m1"
	must vlunctl pool create pool0 "$POOL_DIR/m0" "$POOL_DIR/m1" --meta-size 8M
	must vlunctl vdisk create "$SPEC" lin0 --size $SIZE --linear --members 0
	STACK_KEEP_POOL=1 stack_up lin0 $SIZE

	step "mirror lin0 onto member 1 through the holder; wait until in sync"
	must vlunctl mirror add "$SPEC" lin0 --members 1
	must vlunctl resync "$SPEC" --wait
	show vlunctl pool show "$SPEC"
	check "lin0 mirrored on members 0 and 1, in sync" in_sync
	check "copies identical after the initial resync" mirror_copies_identical "$SPEC" lin0

	# ---------------------------------------------------------- case A
	step "A: fio write+verify (sequential 256k, QD8, $RATE); member 1 -> dm-error after 16 MiB"
	echo "vlun-lab: mirror A starts" >/dev/kmsg
	W0=$(map_written_mb)
	json=$LAB_SDIR/fio-a.json
	fio_run "$json" --rate=$RATE >"$LAB_SDIR/fio-a.stderr" 2>&1 &
	local fio_pid=$!
	must wait_for 90 map_written_ge 16
	t=$(lab_uptime)
	local w_start w_end
	w_start=$(($(map_written_mb) - W0))
	must dm_member_set vlm1 error
	w_end=$(($(map_written_mb) - W0))
	say "      member 1 (vlm1) is dm-error: swapped between $w_start and $w_end MiB written"
	check "A: fio still writing when member 1 failed" kill -0 $fio_pid
	check "A: the holder marks member 1 failed (vlunctl stats, within 30 s)" wait_for 30 holder_member_is 1 failed
	say "      member 1 failed $(_lab_t "$t") s after the swap"
	check "A: vlunctl pool show reports member 1 FAILED while it is unreadable" pool_show_failed 1
	fio_wait $fio_pid 240
	rc=$?
	cat "$LAB_SDIR/fio-a.stderr"
	check "A: fio exited 0" eq "$rc" 0
	check "A: no I/O error, every block written and verified (fio JSON)" fio_clean "$json"
	c=$(fio_json_counts "$json")
	check "A: no I/O error on the multipath map in the kernel log" no_map_errors "vlun-lab: mirror A starts"
	check "A: member 1 still failed after fio (holder)" holder_member_is 1 failed
	local behind_ps; behind_ps=$(behind_bytes 2>/dev/null)
	check "A: vlunctl pool show --json says how much is behind (mirror_state behind)" \
		sh -c "[ -n '$behind_ps' ] && [ '$behind_ps' -gt 0 ] && [ \"\$(vlunctl pool show '$SPEC' --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"vdisks\"][0][\"mirror_state\"])')\" = behind ]"
	fact "A: fio (error total_err writes bytes reads bytes) = $c; member 1 dm-error after $w_start..$w_end MiB of 64 written; pool show behind: ${behind_ps:-unavailable}"

	step "A: member 1 back (dm-linear): probe marks it OK, the resync copies what is behind"
	start_line=$(log_lines)
	t=$(lab_uptime)
	must dm_member_set vlm1 linear
	check "A: member 1 OK again within 15 s" wait_for 15 member_is 1 ok
	t_ok=$(_lab_t "$t")
	check "A: in sync again (within 120 s)" wait_for 120 in_sync
	local t_sync; t_sync=$(_lab_t "$t")
	sleep 1
	show vlunctl jobs "$SPEC"
	show log_since "$start_line" 'resync|member|FAILED'
	copied=$(resync_copied_since "$start_line")
	behind=$(log_since "$start_line" 'resync started: [0-9]+ bytes behind' | head -n1 | sed -E 's/.*resync started: ([0-9]+) bytes.*/\1/')
	# fio writes sequentially: what it wrote before the swap is on both
	# copies, what it wrote after is behind (1 MiB regions, 2 MiB in flight)
	local lo=$(( (64 - w_end - 2) * 1048576 )) hi=$(( (64 - w_start + 3) * 1048576 ))
	check "A: behind when member 1 came back ($behind bytes) = what fio wrote after the swap ($lo..$hi)" \
		sh -c "[ -n '$behind' ] && [ '$behind' -ge $lo ] && [ '$behind' -le $hi ]"
	check "A: the resync copied exactly what was behind ($copied of $behind bytes)" eq "$copied" "$behind"
	[ -n "$behind_ps" ] && check "A: behind per pool show = behind per the resync" eq "$behind_ps" "$behind"
	check "A: copies identical" mirror_copies_identical "$SPEC" lin0
	show vlunctl pool show "$SPEC"
	fact "A: member 1 OK ${t_ok}s after dm-linear, in sync after ${t_sync}s; resync copied $((copied / 1048576)) MiB (behind: $((behind / 1048576)) MiB)"

	# ---------------------------------------------------------- case B
	step "B: fio write+verify, new data ($RATE_B); member 0 (primaries) -> dm-flakey up 4 s / down 3 s after 8 MiB"
	echo "vlun-lab: mirror B starts" >/dev/kmsg
	start_line=$(log_lines)
	W0=$(map_written_mb)
	json=$LAB_SDIR/fio-b.json
	fio_run "$json" --rate=$RATE_B --randseed=$SEED_B >"$LAB_SDIR/fio-b.stderr" 2>&1 &
	fio_pid=$!
	must wait_for 60 map_written_ge 8
	must dm_member_set vlm0 flakey 4 3
	check "B: fio still writing when member 0 became flakey" kill -0 $fio_pid
	check "B: the holder marks member 0 FAILED (its log, within 30 s)" \
		wait_for 30 sh -c "tail -n +$((start_line + 1)) '$(runner_log)' | grep -q 'member 0 .*marked FAILED'"
	show vlunctl stats "$SPEC"
	fio_wait $fio_pid 240
	rc=$?
	cat "$LAB_SDIR/fio-b.stderr"
	check "B: fio exited 0" eq "$rc" 0
	check "B: no I/O error, every block written and verified (fio JSON)" fio_clean "$json"
	c=$(fio_json_counts "$json")
	check "B: no I/O error on the multipath map in the kernel log" no_map_errors "vlun-lab: mirror B starts"
	show vlunctl pool show "$SPEC"
	show vlunctl jobs "$SPEC"

	step "B: member 0 back to dm-linear: OK, in sync, copies identical"
	t=$(lab_uptime)
	must dm_member_set vlm0 linear
	check "B: member 0 OK again within 15 s" wait_for 15 member_is 0 ok
	t_ok=$(_lab_t "$t")
	check "B: in sync again (within 120 s)" wait_for 120 in_sync
	t_sync=$(_lab_t "$t")
	sleep 1
	show log_since "$start_line" 'resync|member|FAILED'
	local nfail nok nres
	nfail=$(log_since "$start_line" "member 0 .*marked FAILED" | wc -l)
	nok=$(log_since "$start_line" "member 0 .*answers again: marked OK" | wc -l)
	nres=$(log_since "$start_line" "resync started" | wc -l)
	copied=$(resync_copied_since "$start_line")
	check "B: member 0 failed at least once" sh -c "[ $nfail -ge 1 ]"
	# every region of the disk written once in B; a resync per flap of the
	# whole disk would copy several times that
	check "B: the resyncs copied no more than was written in B plus 8 MiB ($copied bytes)" \
		sh -c "[ $copied -le $((SIZE_B + 8 * 1048576)) ]"
	check "B: copies identical" mirror_copies_identical "$SPEC" lin0
	fact "B: fio (error total_err writes bytes reads bytes) = $c; member 0 flakey: $nfail failures, $nok returns, $nres resync passes, $((copied / 1048576)) MiB copied by the completed passes; OK ${t_ok}s after dm-linear, in sync after ${t_sync}s"

	step "final fio verify-only pass over the whole disk (B's data), through the map"
	json=$LAB_SDIR/fio-verify.json
	check "verify-only pass over $SIZE" fio_run "$json" --verify_only --randseed=$SEED_B
	c=$(fio_json_counts "$json")
	echo "$c"
	check "verify-only read all of $SIZE without error" sh -c "set -- $c; [ \$1 = 0 ] && [ \$6 = $SIZE_B ]"
	fact "final verify-only: (error total_err writes bytes reads bytes) = $c"
	show vlunctl pool show "$SPEC"
}
