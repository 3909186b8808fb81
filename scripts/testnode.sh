#!/usr/bin/env bash
# testnode.sh — throwaway SSH "nodes" for tests.
#
#   testnode.sh up NAME     create node NAME (idempotent) and print KEY=VALUE lines
#   testnode.sh rekey NAME  give the node's sshd a fresh host key and restart it
#   testnode.sh down NAME   remove node NAME (idempotent, safe to call twice)
#
# A node is a network namespace gh-NAME joined to the host by a veth pair on a
# private /30 (10.198.x.y, chosen from NAME), with its own OpenSSH sshd on port
# 22 of the node address. The namespace shares the host's filesystem; its users
# exist only inside it: files under /etc/netns/gh-NAME/ (passwd, group, shadow,
# sudoers.d) are bind-mounted over /etc by `ip netns exec` for every process
# started in the node, so the host's own accounts and sudoers are never edited.
#
# Users inside the node:
#   root    password ROOT_PASSWORD, and the client key CLIENT_KEY
#   ghtest  client key CLIENT_KEY, password-less sudo
#   ghpass  password GHPASS_PASSWORD, sudo that asks for the password
#
# The node has no default route: it can reach only HOST_ADDR (the host end of
# the veth pair) and itself. Agents inside a node must dial a controller
# listening on HOST_ADDR (or on 0.0.0.0).
#
# State lives in $GATEHOUSE_TESTNODE_DIR/NAME (default /run/gatehouse-testnode).
set -euo pipefail

die() { echo "testnode: $*" >&2; exit 1; }

usage() { die "usage: testnode.sh up|down|rekey NAME (NAME: lower-case letters, digits, '-', at most 12)"; }

[ $# -eq 2 ] || usage
cmd=$1 name=$2
[[ $name =~ ^[a-z0-9][a-z0-9-]{0,11}$ ]] || usage
[ "$(id -u)" -eq 0 ] || die "must run as root"

ns="gh-$name"
base="${GATEHOUSE_TESTNODE_DIR:-/run/gatehouse-testnode}"
dir="$base/$name"
over="/etc/netns/$ns"
hash=$(printf '%s' "$name" | cksum | cut -d' ' -f1)
hex=$(printf '%08x' "$hash")
vhost="gh${hex}h"
vnode="gh${hex}n"
ghtest_uid=64010
ghpass_uid=64011

sshd_running() {
  [ -s "$dir/sshd.pid" ] || return 1
  local pid
  pid=$(cat "$dir/sshd.pid")
  [ -d "/proc/$pid" ] && grep -q sshd "/proc/$pid/comm" 2>/dev/null
}

start_sshd() {
  /usr/sbin/sshd -t -f "$dir/sshd_config" || die "sshd rejected $dir/sshd_config"
  rm -f "$dir/sshd.pid"
  ip netns exec "$ns" /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  for _ in $(seq 1 100); do
    sshd_running && return 0
    sleep 0.05
  done
  die "sshd did not start; see $dir/sshd.log"
}

stop_sshd() {
  if sshd_running; then
    local pid
    pid=$(cat "$dir/sshd.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      [ -d "/proc/$pid" ] || break
      sleep 0.05
    done
  fi
  rm -f "$dir/sshd.pid"
}

new_host_key() {
  rm -f "$dir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C "testnode-$name" -f "$dir/ssh_host_ed25519_key"
}

print_env() { cat "$dir/env"; }

ns_exists() { ip netns list | awk '{print $1}' | grep -qxF "$ns"; }

# pick_block prints "HOST_ADDR NODE_ADDR" for the first free /30 at or after
# the one NAME hashes to.
pick_block() {
  local i b third fourth
  for i in $(seq 0 255); do
    b=$(( (hash + i) % 16384 ))
    third=$(( b / 64 ))
    fourth=$(( (b % 64) * 4 ))
    if [ -z "$(ip -4 -o addr show to "10.198.$third.$fourth/30")" ]; then
      echo "10.198.$third.$((fourth + 1)) 10.198.$third.$((fourth + 2))"
      return 0
    fi
  done
  die "no free 10.198.0.0/16 block for $name"
}

down() {
  if ns_exists; then
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
      sleep 0.2
      pids=$(ip netns pids "$ns" 2>/dev/null || true)
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
  fi
  ip link del "$vhost" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$over" "$dir"
}

up() {
  if [ -s "$dir/env" ] && ns_exists && sshd_running; then
    print_env
    return 0
  fi
  down
  command -v ip >/dev/null || die "ip (iproute2) not installed"
  [ -x /usr/sbin/sshd ] || die "sshd (openssh-server) not installed"
  mkdir -p /run/sshd
  mkdir -p "$base" "$dir"
  chmod 0755 "$base"
  local addrs host node
  addrs=$(pick_block)
  host=${addrs% *}
  node=${addrs#* }

  ip netns add "$ns"
  ip link add "$vhost" type veth peer name "$vnode" netns "$ns"
  ip addr add "$host/30" dev "$vhost"
  ip link set "$vhost" up
  ip -n "$ns" addr add "$node/30" dev "$vnode"
  ip -n "$ns" link set "$vnode" up
  ip -n "$ns" link set lo up

  # Credentials.
  local root_pw ghpass_pw
  root_pw=$(openssl rand -hex 12)
  ghpass_pw=$(openssl rand -hex 12)
  ssh-keygen -q -t ed25519 -N '' -C "testnode-$name-client" -f "$dir/client_key"
  new_host_key

  # Users and sudoers seen only inside the node.
  mkdir -p "$over/sudoers.d" "$dir/home/ghtest" "$dir/home/ghpass" "$dir/authorized_keys"
  chown "$ghtest_uid:$ghtest_uid" "$dir/home/ghtest"
  chown "$ghpass_uid:$ghpass_uid" "$dir/home/ghpass"
  chmod 0755 "$dir" "$dir/home" "$dir/authorized_keys"
  grep -v -E '^(ghtest|ghpass):' /etc/passwd >"$over/passwd"
  echo "ghtest:x:$ghtest_uid:$ghtest_uid:gatehouse test:$dir/home/ghtest:/bin/sh" >>"$over/passwd"
  echo "ghpass:x:$ghpass_uid:$ghpass_uid:gatehouse test:$dir/home/ghpass:/bin/sh" >>"$over/passwd"
  grep -v -E '^(ghtest|ghpass):' /etc/group >"$over/group"
  echo "ghtest:x:$ghtest_uid:" >>"$over/group"
  echo "ghpass:x:$ghpass_uid:" >>"$over/group"
  local root_hash ghpass_hash
  root_hash=$(printf '%s' "$root_pw" | openssl passwd -6 -stdin)
  ghpass_hash=$(printf '%s' "$ghpass_pw" | openssl passwd -6 -stdin)
  awk -F: -v OFS=: -v h="$root_hash" '$1 == "root" { $2 = h } $1 != "ghtest" && $1 != "ghpass" { print }' /etc/shadow >"$over/shadow"
  echo "ghtest:*:19000:0:99999:7:::" >>"$over/shadow"
  echo "ghpass:$ghpass_hash:19000:0:99999:7:::" >>"$over/shadow"
  chmod 0644 "$over/passwd" "$over/group"
  chmod 0640 "$over/shadow"
  chgrp shadow "$over/shadow" 2>/dev/null || true
  if [ -d /etc/sudoers.d ]; then
    cp -a /etc/sudoers.d/. "$over/sudoers.d/"
  fi
  echo "ghtest ALL=(ALL) NOPASSWD: ALL" >"$over/sudoers.d/gatehouse-testnode-ghtest"
  echo "ghpass ALL=(ALL) ALL" >"$over/sudoers.d/gatehouse-testnode-ghpass"
  chmod 0440 "$over/sudoers.d/gatehouse-testnode-ghtest" "$over/sudoers.d/gatehouse-testnode-ghpass"
  chmod 0755 "$over/sudoers.d"
  cp "$dir/client_key.pub" "$dir/authorized_keys/root"
  cp "$dir/client_key.pub" "$dir/authorized_keys/ghtest"
  chmod 0644 "$dir/authorized_keys/root" "$dir/authorized_keys/ghtest"

  cat >"$dir/sshd_config" <<EOF
ListenAddress $node:22
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
PermitRootLogin yes
PasswordAuthentication yes
PubkeyAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AuthorizedKeysFile $dir/authorized_keys/%u
Subsystem sftp internal-sftp
LogLevel DEBUG1
MaxStartups 100
EOF
  start_sshd

  local fp
  fp=$(ssh-keygen -l -E sha256 -f "$dir/ssh_host_ed25519_key.pub" | awk '{print $2}')
  cat >"$dir/env.tmp" <<EOF
NAME=$name
NETNS=$ns
ADDR=$node
HOST_ADDR=$host
PORT=22
HOST_KEY=$dir/ssh_host_ed25519_key.pub
HOST_KEY_TYPE=ssh-ed25519
HOST_KEY_FINGERPRINT=$fp
CLIENT_KEY=$dir/client_key
ROOT_PASSWORD=$root_pw
GHTEST_USER=ghtest
GHPASS_USER=ghpass
GHPASS_PASSWORD=$ghpass_pw
SSHD_LOG=$dir/sshd.log
STATE_DIR=$dir
EOF
  chmod 0600 "$dir/env.tmp"
  mv "$dir/env.tmp" "$dir/env"
  print_env
}

rekey() {
  [ -s "$dir/env" ] || die "node $name is not up"
  stop_sshd
  new_host_key
  local fp
  fp=$(ssh-keygen -l -E sha256 -f "$dir/ssh_host_ed25519_key.pub" | awk '{print $2}')
  sed -i "s|^HOST_KEY_FINGERPRINT=.*|HOST_KEY_FINGERPRINT=$fp|" "$dir/env"
  start_sshd
  print_env
}

case $cmd in
  up) up ;;
  down) down ;;
  rekey) rekey ;;
  *) usage ;;
esac
