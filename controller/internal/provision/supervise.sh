#!/bin/sh
# gatehouse-agent-supervise: keeps a program running on nodes without systemd.
#
#   gatehouse-agent-supervise start  NAME RUNDIR PROGRAM [ARG...]
#   gatehouse-agent-supervise stop   NAME RUNDIR
#   gatehouse-agent-supervise status NAME RUNDIR
#
# start stops any supervisor already running for NAME, then starts a new one
# in its own session (setsid + nohup), detached from the caller. The
# supervisor runs PROGRAM with the caller's environment, writes its pid to
# RUNDIR/NAME.pid and runs it again one second after it exits, whatever the
# reason. The supervisor's own pid is in RUNDIR/NAME.supervisor.pid, and
# PROGRAM's output goes to RUNDIR/NAME.log. stop ends the supervisor and
# PROGRAM. status exits 0 when the supervisor runs.
#
# Installed by Gatehouse next to the agent binary; its text is fixed and
# never built from input. It does not survive a reboot by itself: start it
# from the init system's local startup script (e.g. /etc/local.d on OpenRC or
# /etc/rc.local) if the node has one.
set -u

usage() { echo "usage: $0 start|stop|status NAME RUNDIR [PROGRAM ARG...]" >&2; exit 2; }

[ $# -ge 3 ] || usage
cmd=$1 name=$2 rundir=$3
shift 3
case $name in '' | *[!a-z0-9-]*) echo "$0: bad name: $name" >&2; exit 2 ;; esac
case $rundir in /*) ;; *) echo "$0: RUNDIR must be absolute" >&2; exit 2 ;; esac
spid=$rundir/$name.supervisor.pid
cpid=$rundir/$name.pid
log=$rundir/$name.log

# readpid FILE: print the pid in FILE if that process is alive.
readpid() {
	[ -s "$1" ] || return 1
	p=$(cat "$1")
	case $p in '' | *[!0-9]*) return 1 ;; esac
	running "$p" || return 1
	echo "$p"
}

# supervisor_pid: print the pid of the running supervisor for NAME, checking
# that the pid was not reused by another program.
supervisor_pid() {
	p=$(readpid "$spid") || return 1
	tr '\000' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "supervise run $name $rundir " || return 1
	echo "$p"
}

# running PID: true while PID exists and is not a zombie waiting for an
# (orphan-reaping) init to collect it.
running() {
	kill -0 "$1" 2>/dev/null || return 1
	! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# waitgone PID: wait up to five seconds for PID to exit, then kill it.
waitgone() {
	i=0
	while running "$1" && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -KILL "$1" 2>/dev/null || true
}

stop() {
	if p=$(supervisor_pid); then
		kill -TERM "$p" 2>/dev/null || true
		waitgone "$p"
	fi
	if p=$(readpid "$cpid"); then
		kill -TERM "$p" 2>/dev/null || true
		waitgone "$p"
	fi
	rm -f "$spid" "$cpid"
}

run() {
	echo $$ >"$spid"
	child=
	trap 'trap - TERM INT; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null; rm -f "$spid" "$cpid"; exit 0' TERM INT
	while :; do
		"$@" </dev/null >>"$log" 2>&1 &
		child=$!
		echo "$child" >"$cpid"
		wait "$child"
		status=$?
		echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) supervise: $name exited with status $status; restarting in 1s" >>"$log"
		sleep 1
	done
}

case $cmd in
start)
	[ $# -ge 1 ] || usage
	stop
	mkdir -p "$rundir"
	setsid nohup "$0" run "$name" "$rundir" "$@" </dev/null >>"$log" 2>&1 &
	i=0
	while [ $i -lt 100 ]; do
		if supervisor_pid >/dev/null && readpid "$cpid" >/dev/null; then
			exit 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	echo "$0: $name did not start; see $log" >&2
	exit 1
	;;
run) run "$@" ;;
stop) stop ;;
status) supervisor_pid >/dev/null ;;
*) usage ;;
esac
