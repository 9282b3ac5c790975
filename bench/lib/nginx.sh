# Sourced by bench/instr.sh and bench/perf.sh: one nginx process (1 worker, master_process off) serving a plain
# 200 `hello\n` on a free loopback port, with keep-alive connections that never expire during a measurement.
# Needs: $TMP (a scratch directory). Sets NGINX_PID and NGINX_URL. nginx_stop kills it (call it from a trap too).

NGINX_PID=""
NGINX_URL=""

nginx_bin() { command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; }; }

# A port nothing listens on, from the range above the ephemeral ports' usual start.
free_port() {
    local port
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 20000))
        ss -Hltn "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return 0; }
    done
    return 1
}

nginx_start() {
    local dir="$TMP/nginx" port bin
    bin=$(nginx_bin) || { echo "nginx not found" >&2; return 1; }
    mkdir -p "$dir"
    port=$(free_port) || { echo "no free port" >&2; return 1; }
    cat >"$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  default_type text/plain;
  server { listen 127.0.0.1:$port backlog=4096; location / { return 200 "hello\n"; } }
}
CONF
    "$bin" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >/dev/null 2>&1 &
    NGINX_PID=$!
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            NGINX_URL="http://127.0.0.1:$port"
            return 0
        fi
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.05
    done
    cat "$dir/error.log" >&2 2>/dev/null || true
    echo "nginx did not start on port $port" >&2
    return 1
}

nginx_stop() {
    [[ -n $NGINX_PID ]] || return 0
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=""
}

# Installs the missing ones of the given apt packages (root or sudo).
apt_install_missing() { # args: "command:package" pairs
    local need=() pair
    for pair in "$@"; do
        local cmd=${pair%%:*} pkg=${pair#*:}
        if [[ $cmd == /* ]]; then [[ -x $cmd ]] || need+=("$pkg"); else command -v "$cmd" >/dev/null || need+=("$pkg"); fi
    done
    ((${#need[@]})) || return 0
    echo "installing ${need[*]}" >&2
    local sudo=""; [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}
