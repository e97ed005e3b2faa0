# suites: e2e mirror
# summary: online migration under fio randwrite+verify (off member 0, 20 MiB/s); a second one survives kill -9 of tcmu-runner and resumes
#
# A linear vdisk on member 0 of a three-member pool, exported over two
# iSCSI portals and multipath. While fio writes it at random (64 KiB, QD8,
# crc32c verify headers, then a verify pass), `vlunctl migrate --off-member
# 0 --rate 20M --wait` moves everything off member 0 through the holder:
# fio must see no error and verify every block, the command must print its
# progress and end with the job done, and no extent (either copy) may be
# left on member 0.
#
# Then a second migration moves the vdisk back onto member 0 at 4 MiB/s,
# and tcmu-runner is killed (SIGKILL) a quarter of the way through. The job
# is recorded in the metadata: the pool shows it while the runner is down,
# and the restarted runner resumes it by itself. It must finish with
# everything on member 0, and fio's verify-only passes (one while the
# resumed job copies, one after) must find the data of the first pass.

SIZE=128M
SIZE_B=$((128 * 1048576))
RATE=4m                       # host writes: ~32 s, so the migration runs inside them
MIG_RATE=20M
MIG2_RATE=4M
SPEC=$POOL_DIR

pool_json() { vlunctl pool show "$SPEC" --json; }
jobs_json() { vlunctl jobs "$SPEC" --json; }

# fio randwrite + verify over the map; extra options after the JSON path
fio_rand() {
	local json=$1; shift
	fio --name=mig --filename=/dev/mapper/$MAP --direct=1 --ioengine=libaio --iodepth=8 \
		--rw=randwrite --bs=64k --size=$SIZE --verify=crc32c --verify_fatal=1 --do_verify=1 \
		--output-format=json --output="$json" "$@"
}
fio_clean() { # JSON [verify-only]
	local c; c=$(fio_json_counts "$1") || return 1
	echo "error total_err writes write_bytes reads read_bytes = $c"
	set -- $c "${2:-}"
	[ "$1" = 0 ] && [ "$2" = 0 ] && [ "$6" = $SIZE_B ] && { [ "$7" = verify-only ] || [ "$4" = $SIZE_B ]; }
}

map_written_mb() {
	local dm; dm=$(basename "$(readlink -f "/dev/mapper/$MAP")")
	awk '{ print int($7 / 2048) }' "/sys/block/$dm/stat"
}
map_written_ge() { [ "$(map_written_mb)" -ge $(($1 + W0)) ]; }

# extents of lin0 with either copy on member $1 (count)
extents_on() { vjson "sum(1 for e in d['extents'] if e['member'] == $1 or e['alt_member'] == $1)" vlunctl vdisk show "$SPEC" lin0 --json; }
extents_only_on() { vjson "all(e['member'] == $1 and e['alt_member'] is None for e in d['extents'])" vlunctl vdisk show "$SPEC" lin0 --json; }
persistent_jobs() { vjson "len(d['jobs'])" pool_json; }
# done bytes of migration job $1 on the holder (0 if not listed)
job_done_bytes() { vjson "sum(j['done_bytes'] for j in d['jobs'] if j['id'] == $1)" jobs_json; }
job_done_ge() { [ "$(job_done_bytes "$1")" -ge "$2" ]; }
# some extent of lin0 not on member 0 yet
unfinished() { [ "$(vjson "sum(1 for e in d['extents'] if e['member'] != 0)" vlunctl vdisk show "$SPEC" lin0 --json)" -gt 0 ]; }
two_active() { [ "$(mpath_active)" = 2 ]; }
migration_finished() { [ "$(persistent_jobs)" = 0 ] && [ "$(extents_only_on 0)" = True ]; }

fio_wait() { # pid seconds
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
		skip "online migration under fio verify" "backend $LAB_BACKEND is not vlun"
		return 0
	fi
	local json rc c t out id rates

	step "pool of three member files, linear vdisk lin0 ($SIZE) on member 0"
	must pool_create pool0 256M 3
	must vlunctl vdisk create "$SPEC" lin0 --size $SIZE --linear --members 0
	STACK_KEEP_POOL=1 stack_up lin0 $SIZE
	check "lin0 lies on member 0 only" eq "$(extents_only_on 0)" True

	step "fio randwrite+verify (64k, QD8, $RATE); migrate --off-member 0 --rate $MIG_RATE --wait after 16 MiB"
	echo "vlun-lab: migrate 1 starts" >/dev/kmsg
	W0=$(map_written_mb)
	json=$LAB_SDIR/fio-1.json
	fio_rand "$json" --rate=$RATE >"$LAB_SDIR/fio-1.stderr" 2>&1 &
	local fio_pid=$!
	must wait_for 60 map_written_ge 16
	out=$LAB_SDIR/migrate-1.txt
	t=$(lab_uptime)
	vlunctl migrate "$SPEC" --off-member 0 --rate $MIG_RATE --wait >"$out" 2>&1
	rc=$?
	local t_mig; t_mig=$(_lab_t "$t")
	cat "$out"
	[ "$LAB_VERBOSE" = 1 ] && say_indented <"$out" >/dev/null
	check "migrate --off-member 0 --wait exited 0 (${t_mig}s)" eq "$rc" 0
	check "fio was still writing when the migration ended" kill -0 $fio_pid
	check "progress lines printed (running ..., MiB/s) and the job done" \
		sh -c "grep -cE 'running +[0-9.]+%.*MiB/s' '$out' && grep -qE 'done' '$out'"
	rates=$(grep -oE '[0-9.]+ MiB/s,' "$out" | awk '{ print $1 }' | paste -sd' ')
	fio_wait $fio_pid 300
	rc=$?
	cat "$LAB_SDIR/fio-1.stderr"
	check "fio exited 0" eq "$rc" 0
	check "fio: no I/O error, every block written and verified (JSON)" fio_clean "$json"
	c=$(fio_json_counts "$json")
	check "no extent of lin0 left on member 0 (either copy)" eq "$(extents_on 0)" 0
	check "member 0 uses no sectors" eq "$(vjson "d['members'][0]['used_sectors']" pool_json)" 0
	check "no persistent job left" eq "$(persistent_jobs)" 0
	show vlunctl pool show "$SPEC"
	show sh -c "vlunctl vdisk show '$SPEC' lin0 | sed -n '/^Extents:/,\$p'"
	fact "migration 1: $SIZE off member 0 under fio in ${t_mig}s (limit $MIG_RATE/s); progress rates (MiB/s): $rates"
	fact "fio 1 (error total_err writes bytes reads bytes) = $c"

	step "second migration (lin0 --to 0, $MIG2_RATE/s); kill -9 tcmu-runner a quarter of the way"
	out=$LAB_SDIR/migrate-2.txt
	must sh -c "vlunctl migrate '$SPEC' lin0 --to 0 --rate $MIG2_RATE >'$out' 2>&1"
	cat "$out"
	id=$(grep -oE 'job [0-9]+' "$out" | head -n1 | awk '{ print $2 }')
	must test -n "$id"
	must wait_for 60 job_done_ge "$id" $((SIZE_B / 4))
	local before; before=$(job_done_bytes "$id")
	local pid; pid=$(pgrep -x tcmu-runner)
	must kill -KILL "$pid"
	must wait_for 10 sh -c '! pgrep -x tcmu-runner'
	say "      tcmu-runner (pid $pid) killed with $((before / 1048576)) MiB of job $id moved"
	show vlunctl pool show "$SPEC"
	check "while the runner is down, the pool records the migration (1 persistent job)" eq "$(persistent_jobs)" 1
	check "while the runner is down, the migration is unfinished (extents off member 0)" unfinished
	t=$(lab_uptime)
	must runner_start
	check "both paths active again after the restart" wait_for 90 two_active

	step "the restarted runner resumes the migration; fio verify-only while it copies and after"
	json=$LAB_SDIR/fio-2.json
	check "fio verify-only while the resumed migration runs" fio_rand "$json" --verify_only
	check "fio verify-only: no error, all $SIZE verified" fio_clean "$json" verify-only
	check "the migration finishes by itself (within 120 s)" wait_for 120 migration_finished
	local t_res; t_res=$(_lab_t "$t")
	show vlunctl jobs "$SPEC"
	show grep -E 'migrat|bytes to move|moved' "$(ls "$LAB_SDIR"/tcmu-runner*.log | sort -V | tail -n1)"
	check "the restarted runner logged the resumed job" \
		file_contains "$(ls "$LAB_SDIR"/tcmu-runner*.log | sort -V | tail -n1)" 'bytes to move'
	check "lin0 lies on member 0 only again" eq "$(extents_only_on 0)" True
	json=$LAB_SDIR/fio-3.json
	check "fio verify-only after the migration" fio_rand "$json" --verify_only
	check "fio verify-only after: no error, all $SIZE verified" fio_clean "$json" verify-only
	show vlunctl pool show "$SPEC"
	fact "migration 2: killed at $((before / 1048576)) MiB moved; resumed after runner restart, all on member 0 ${t_res}s after the restart"
}
