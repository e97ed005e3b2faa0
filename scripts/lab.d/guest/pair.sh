# guest/pair.sh — two lab guests (sourced after lib.sh).
#
# A scenario with "# guests: 2" in its header runs on the primary guest
# (vlunlab1, 10.77.0.1 and 10.77.0.11) while scripts/lab boots a second
# one, the peer (vlunlab2, 10.77.0.2): the same image, its own kernel, LIO
# and tcmu-runner — a second gateway node. The two are linked by a virtual
# NIC (iSCSI between them) and share /sync, a 9p directory of the host.
#
# The peer only serves: the primary runs `on_peer CMD...`, the peer runs
# CMD in a subshell with lib.sh, pr.sh, pair.sh and the scenario file
# sourced, and the primary gets its output and exit status. The scenario
# keeps every step and every check in one place (scenario_main on the
# primary); what the peer does is ordinary functions of the same file.
#
# /sync protocol, one request at a time, numbered from 1:
#   req.N   written by the primary (renamed into place): line 1 the
#           scenario, the rest the command
#   out.N   the command's stdout and stderr, rc.N its exit status (the
#           peer renames each into place, rc.N last)
#   ready   the peer is up and serving; stop: the primary is done

PAIR=/sync
PRIMARY_IP=10.77.0.1 PRIMARY_IP2=10.77.0.11 PEER_IP=10.77.0.2
PAIR_SEQ=/run/pair.seq

# on_peer [-t SECONDS] CMD... : run CMD on the peer (default limit 300 s)
on_peer() {
	local t=300 n rc w
	if [ "$1" = -t ]; then t=$2; shift 2; fi
	n=$(( $(cat "$PAIR_SEQ" 2>/dev/null || echo 0) + 1 ))
	echo "$n" >"$PAIR_SEQ"
	printf '%s\n%s\n' "$LAB_SCENARIO" "$*" >"$PAIR/.req.$n" && mv "$PAIR/.req.$n" "$PAIR/req.$n" || return 1
	w=$((t * 5))
	while [ ! -e "$PAIR/rc.$n" ]; do
		[ $w -gt 0 ] || { echo "on_peer: no answer from the peer within ${t}s to: $*"; return 124; }
		sleep 0.2; w=$((w - 1))
	done
	cat "$PAIR/out.$n"
	rc=$(cat "$PAIR/rc.$n")
	return "${rc:-1}"
}

# the primary: wait until the peer serves (it boots alongside, so a
# scenario starts with this)
pair_wait_peer() { # [seconds]
	local n=$(( ${1:-300} * 2 ))
	while [ ! -e "$PAIR/ready" ]; do
		[ $n -gt 0 ] || { echo "the peer guest did not come up (no $PAIR/ready)"; return 1; }
		sleep 0.5; n=$((n - 1))
	done
	cat "$PAIR/ready"
}

# the peer: serve requests until /sync/stop; its log and the scenarios'
# files go to LAB_R like the primary's (synced to its results share)
pair_serve() {
	local n=1 scen cmd rc
	echo "peer $(hostname) up at $(lab_uptime)s" >"$PAIR/.ready" && mv "$PAIR/.ready" "$PAIR/ready"
	while [ ! -e "$PAIR/stop" ]; do
		if [ ! -e "$PAIR/req.$n" ]; then
			sleep 0.2
			continue
		fi
		scen=$(head -n1 "$PAIR/req.$n")
		cmd=$(tail -n +2 "$PAIR/req.$n")
		printf '[%s] req %d (%s): %s\n' "$(lab_uptime)" "$n" "$scen" "$cmd"
		(
			LAB_SCENARIO=$scen LAB_SDIR=$LAB_R/$scen
			mkdir -p "$LAB_SDIR"
			[ -f "/lab/e2e/$scen.sh" ] && . "/lab/e2e/$scen.sh"
			eval "$cmd"
		) >"$PAIR/.out.$n" 2>&1 </dev/null
		rc=$?
		printf '[%s] req %d: exit %d\n' "$(lab_uptime)" "$n" "$rc"
		mv "$PAIR/.out.$n" "$PAIR/out.$n"
		echo "$rc" >"$PAIR/.rc.$n" && mv "$PAIR/.rc.$n" "$PAIR/rc.$n"
		cp -a "$LAB_R/." /results/ 2>/dev/null
		n=$((n + 1))
	done
}
