//! End-to-end tests of `fetchscope compare`: the same fetch through fetchscope's stack and
//! through the kernel's, checked against tshark's reading of captures taken at the same
//! points (the veth for the kernel run, the TUN device for the userspace run).
//!
//! The namespace-lab test brings up its own lab with `FSC_LAB_PREFIX=fscc` (namespaces
//! fscc-srv/fscc-cli, veth fscc-cli0, TUN fscc0, state in /tmp/fetchscope-lab-fscc), so
//! it never collides with a lab under another prefix, and takes it down again, also when
//! it fails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use fetchscope_tests::{
    code, events, fetchscope_bin, have, is_root, of_type, require, run, scratch_dir, workspace_root,
};
use serde_json::Value;

const PREFIX: &str = "fscc";
const CLI_NS: &str = "fscc-cli";
const VETH: &str = "fscc-cli0";
const TUN: &str = "fscc0";
const LAB_DIR: &str = "/tmp/fetchscope-lab-fscc";
/// The kernel client's address on the veth, and fetchscope's stack's behind the TUN.
const KERNEL_ADDR: &str = "10.88.0.2";
const STACK_ADDR: &str = "10.88.1.2";

/// The lab tests of this file share one prefix: one at a time.
static LAB_SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn compare_without_tun_is_a_usage_error_that_says_how() {
    let out = run(&["compare", "https://www.example.test/"]);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs --tun"), "{err}");
    assert!(err.contains("netns-lab.sh up"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn compare_without_cap_net_raw_exits_3_naming_the_fix() {
    let args = [
        "compare",
        "https://www.example.test/",
        "--tun",
        "fsc-nonexistent0",
        "--addr",
        "10.99.1.2/24",
    ];
    let out = if is_root() {
        // Root without CAP_NET_RAW: drop it from the bounding set before exec.
        if !require(have("setpriv"), "setpriv (util-linux) to drop CAP_NET_RAW") {
            return;
        }
        Command::new("setpriv")
            .args(["--bounding-set", "-net_raw", "--inh-caps", "-net_raw", "--"])
            .arg(fetchscope_bin())
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run setpriv")
    } else {
        run(&args)
    };
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("CAP_NET_RAW"), "{err}");
    assert!(
        err.contains("sudo setcap cap_net_raw,cap_net_admin+ep $(which fetchscope)"),
        "{err}"
    );
}

/// The namespace lab under [`PREFIX`], taken down when dropped.
struct Lab;

impl Lab {
    fn script() -> PathBuf {
        workspace_root().join("scripts/netns-lab.sh")
    }

    fn up() -> Lab {
        let out = Command::new("bash")
            .arg(Self::script())
            .arg("up")
            .env("FSC_LAB_PREFIX", PREFIX)
            .output()
            .expect("run netns-lab.sh up");
        let lab = Lab;
        assert!(
            out.status.success(),
            "netns-lab.sh up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Self::script())
            .args(["down", "--purge"])
            .env("FSC_LAB_PREFIX", PREFIX)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A tcpdump writing interface `iface` of the client namespace to `path`; stopped (and
/// its file complete) when dropped or by [`Tcpdump::stop`].
struct Tcpdump {
    child: Option<Child>,
}

impl Tcpdump {
    fn start(iface: &str, path: &Path) -> Tcpdump {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                CLI_NS,
                "tcpdump",
                "-n",
                "-U",
                "--immediate-mode",
            ])
            .args(["-Z", "root", "-i", iface, "-w"])
            .arg(path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        let stderr = child.stderr.take().expect("tcpdump stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        let ready = rx.recv_timeout(Duration::from_secs(10)).is_ok();
        let mut t = Tcpdump { child: Some(child) };
        if !ready {
            t.stop();
            panic!("tcpdump on {iface} did not start listening within 10 s");
        }
        t
    }

    /// Lets the last packets in, stops tcpdump (SIGINT, so it flushes) and waits for it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        std::thread::sleep(Duration::from_millis(1000));
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        self.stop();
    }
}

/// tshark's fields for the packets of `file` matching `filter`, one row per packet.
fn tshark(file: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-Y", filter, "-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

fn compare_args(url: &str) -> Vec<String> {
    [
        "compare",
        url,
        "--tun",
        TUN,
        "--addr",
        "10.88.1.2/24",
        "--gateway",
        "10.88.1.1",
        "--dns",
        "10.88.0.1",
        "--cacert",
        &format!("{LAB_DIR}/ca.pem"),
        "--timeout",
        "20",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Runs fetchscope in the client namespace.
fn in_lab(args: &[String]) -> std::process::Output {
    Command::new("ip")
        .args(["netns", "exec", CLI_NS])
        .arg(fetchscope_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("SSLKEYLOGFILE")
        .output()
        .expect("run fetchscope in the lab")
}

/// One run's packet events.
fn packets_of<'a>(ev: &'a [Value], stack: &str) -> Vec<&'a Value> {
    of_type(ev, "packet")
        .into_iter()
        .filter(|p| p["stack"] == stack)
        .collect()
}

/// The client's UDP and TCP ports in one run.
fn ports(pk: &[&Value]) -> (u64, u64) {
    let udp = pk
        .iter()
        .find(|p| p["dir"] == "tx" && p["udp"].is_object())
        .map(|p| p["udp"]["src_port"].as_u64().unwrap())
        .expect("a DNS query");
    let tcp = pk
        .iter()
        .find(|p| p["dir"] == "tx" && p["tcp"].is_object())
        .map(|p| p["tcp"]["src_port"].as_u64().unwrap())
        .expect("a TCP segment");
    (udp, tcp)
}

/// Checks one run against tshark's reading of a capture taken where its packets pass.
fn check_run_against_tshark(
    stack: &str,
    ev: &[Value],
    report: &Value,
    capture: &Path,
    client_addr: &str,
) {
    let pk = packets_of(ev, stack);
    let (udp, tcp) = ports(&pk);
    let flows = format!("ip.addr=={client_addr} && (udp.port=={udp} || tcp.port=={tcp})");
    let rows = tshark(capture, &flows, &["frame.number"]);
    assert_eq!(
        rows.len(),
        pk.len(),
        "{stack}: tshark sees {} packets of the run's flows in {}, fetchscope reported {}",
        rows.len(),
        capture.display(),
        pk.len()
    );
    assert_eq!(
        report["packets_tx"].as_u64().unwrap() + report["packets_rx"].as_u64().unwrap(),
        pk.len() as u64,
        "{stack}: the compare report counts its own packets"
    );
    let sent = tshark(
        capture,
        &format!("{flows} && ip.src=={client_addr}"),
        &["frame.number"],
    );
    assert_eq!(
        sent.len() as u64,
        report["packets_tx"].as_u64().unwrap(),
        "{stack}: sent"
    );

    // The SYN's options, as tshark reads them.
    let syn = tshark(
        capture,
        &format!(
            "ip.src=={client_addr} && tcp.srcport=={tcp} && tcp.flags.syn==1 && tcp.flags.ack==0"
        ),
        &[
            "tcp.options.mss_val",
            "tcp.options.wscale.shift",
            "tcp.options.sack_perm",
            "tcp.options.timestamp.tsval",
            "tcp.window_size_value",
            "ip.len",
        ],
    );
    assert_eq!(syn.len(), 1, "{stack}: one SYN in the capture: {syn:?}");
    let t = &syn[0];
    let ours = pk
        .iter()
        .find(|p| {
            p["dir"] == "tx"
                && p["tcp"]["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|x| x == "SYN"))
        })
        .expect("the SYN in the events");
    let opts = &ours["tcp"]["options"];
    let num = |s: &str| -> Option<u64> { (!s.is_empty()).then(|| s.parse().unwrap()) };
    assert_eq!(num(&t[0]), opts["mss"].as_u64(), "{stack}: MSS");
    assert_eq!(num(&t[1]), opts["ws"].as_u64(), "{stack}: window scale");
    assert_eq!(
        !t[2].is_empty(),
        opts["sack_permitted"] == true,
        "{stack}: SACK-permitted"
    );
    assert_eq!(num(&t[3]), opts["ts_val"].as_u64(), "{stack}: TSval");
    assert_eq!(
        num(&t[4]),
        ours["tcp"]["win"].as_u64(),
        "{stack}: SYN window"
    );
    // ...and as the compare report states them.
    let r = &report["syn"];
    assert_eq!(num(&t[0]), r["mss"].as_u64(), "{stack}: report MSS");
    assert_eq!(num(&t[1]), r["ws"].as_u64(), "{stack}: report window scale");
    assert_eq!(
        !t[2].is_empty(),
        r["sack_permitted"] == true,
        "{stack}: report SACK"
    );
    assert_eq!(num(&t[3]), r["ts_val"].as_u64(), "{stack}: report TSval");
    assert_eq!(num(&t[4]), r["win"].as_u64(), "{stack}: report SYN window");
    assert_eq!(num(&t[5]), r["len"].as_u64(), "{stack}: report SYN length");

    // Retransmissions, as Wireshark's analysis marks them.
    let rt = tshark(
        capture,
        &format!("({flows}) && tcp.analysis.retransmission"),
        &["frame.number"],
    );
    let r = &report["retransmissions"];
    assert_eq!(
        rt.len() as u64,
        r["client"].as_u64().unwrap() + r["server"].as_u64().unwrap(),
        "{stack}: retransmissions, tshark {rt:?} vs {r}"
    );

    // The client's FIN: who sent the first one, and whether it carried data.
    let fins = tshark(
        capture,
        &format!("{flows} && tcp.flags.fin==1"),
        &["ip.src", "tcp.len"],
    );
    assert_eq!(fins.len(), 2, "{stack}: two FINs: {fins:?}");
    let first_by = if fins[0][0] == client_addr {
        "client"
    } else {
        "server"
    };
    assert_eq!(
        report["teardown"]["first_fin"]["by"], first_by,
        "{stack}: first FIN"
    );
    let client_fin = fins.iter().find(|f| f[0] == client_addr).unwrap();
    let client_in_report = [
        &report["teardown"]["first_fin"],
        &report["teardown"]["second_fin"],
    ]
    .into_iter()
    .find(|f| f["by"] == "client")
    .unwrap();
    assert_eq!(
        num(&client_fin[1]),
        client_in_report["payload"].as_u64(),
        "{stack}: payload on the client's FIN"
    );
}

#[test]
fn compare_in_the_namespace_lab_matches_tshark() {
    if !require(is_root(), "root (network namespaces, TUN, packet capture)") {
        return;
    }
    for tool in ["ip", "nginx", "dnsmasq", "openssl", "tcpdump", "tshark"] {
        if !require(have(tool), &format!("{tool} for the namespace lab test")) {
            return;
        }
    }
    // Built before anything is captured.
    let _ = fetchscope_bin();
    let _serial = LAB_SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _lab = Lab::up();
    let dir = scratch_dir("compare");
    let veth_cap = dir.join("veth.pcap");
    let tun_cap = dir.join("tun.pcap");
    let both = dir.join("both.pcapng");

    // ---- --json, with captures at the same points.
    let mut veth = Tcpdump::start(VETH, &veth_cap);
    let mut tun = Tcpdump::start(TUN, &tun_cap);
    let mut args = compare_args("https://www.example.test/");
    args.extend(["--json".into(), "--pcap".into(), both.display().to_string()]);
    let out = in_lab(&args);
    veth.stop();
    tun.stop();
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let last = ev.last().expect("some output");
    assert_eq!(last["type"], "compare", "the compare object comes last");
    for e in &ev[..ev.len() - 1] {
        assert!(
            e["stack"] == "userspace" || e["stack"] == "kernel",
            "every event names its stack: {e}"
        );
    }
    for stack in ["userspace", "kernel"] {
        let done: Vec<_> = of_type(&ev, "done")
            .into_iter()
            .filter(|d| d["stack"] == stack)
            .collect();
        assert_eq!(done.len(), 1, "{stack}: one done event");
        assert_eq!(done[0]["status"], 200);
        let states: Vec<String> = of_type(&ev, "tcp_state")
            .into_iter()
            .filter(|s| s["stack"] == stack)
            .map(|s| {
                format!(
                    "{}>{}",
                    s["from"].as_str().unwrap(),
                    s["to"].as_str().unwrap()
                )
            })
            .collect();
        assert!(
            states.contains(&"SYN-SENT>ESTABLISHED".to_string()),
            "{stack}: {states:?}"
        );
        // Events come in time order within each run.
        let times: Vec<u64> = ev
            .iter()
            .filter(|e| e["stack"] == stack)
            .map(|e| e["t_us"].as_u64().unwrap())
            .collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "{stack}: times go forward"
        );
    }
    // Both runs fetched the same body.
    let sums: Vec<&Value> = of_type(&ev, "done")
        .iter()
        .map(|d| &d["body_sha256"])
        .collect();
    assert_eq!(sums[0], sums[1]);

    check_run_against_tshark("kernel", &ev, &last["kernel"], &veth_cap, KERNEL_ADDR);
    check_run_against_tshark("userspace", &ev, &last["userspace"], &tun_cap, STACK_ADDR);

    // The kernel's own view, read with TCP_INFO, agrees with its handshake.
    let k = &last["kernel"];
    let info = &k["tcp_info_after_connect"];
    assert!(info.is_object(), "TCP_INFO after connect: {k}");
    let both_ts = k["syn"]["ts_val"].is_u64() && k["syn_ack"]["ts_val"].is_u64();
    let has_ts = info["options"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o == "timestamps");
    assert_eq!(
        both_ts, has_ts,
        "TCP_INFO timestamps vs the handshake: {info}"
    );
    assert_eq!(info["rcv_wscale"], k["syn"]["ws"], "our window scale");
    assert_eq!(
        info["snd_wscale"], k["syn_ack"]["ws"],
        "the server's window scale"
    );
    assert!(k["tcp_info_at_end"]["segs_out"].as_u64().unwrap() > 0);

    // The differences are derived from the two reports: spot-check that each SYN
    // difference is stated exactly when the SYNs differ.
    let diffs: Vec<String> = last["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["text"].as_str().unwrap().to_string())
        .collect();
    let u = &last["userspace"];
    let ts_differs = u["syn"]["ts_val"].is_null() != k["syn"]["ts_val"].is_null();
    assert_eq!(
        ts_differs,
        diffs.iter().any(|d| d.contains("TCP timestamps")),
        "{diffs:#?}"
    );
    let ws_differs = u["syn"]["ws"] != k["syn"]["ws"];
    assert_eq!(
        ws_differs,
        diffs.iter().any(|d| d.contains("window scale")),
        "{diffs:#?}"
    );
    let ids_differ = u["ip"]["zero_ids"] != k["ip"]["zero_ids"];
    assert_eq!(
        ids_differ,
        diffs.iter().any(|d| d.contains("IP ID")),
        "{diffs:#?}"
    );

    // One pcapng with both runs, decrypted: tshark finds both requests.
    let requests = tshark(&both, "http.request", &["ip.src", "http.request.uri"]);
    let mut srcs: Vec<&str> = requests.iter().map(|r| r[0].as_str()).collect();
    srcs.sort_unstable();
    assert_eq!(srcs, [KERNEL_ADDR, STACK_ADDR], "{requests:?}");

    // ---- Text: both columns, the sections, the differences.
    let out = in_lab(&compare_args("https://www.example.test/"));
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Phase timings (ms)",
        "Packets per phase",
        "SYN: window scale",
        "ACKs of the server's data",
        "Server's first flight",
        "Teardown",
        "TCP internals",
        "kernel (TCP_INFO at end)",
        "Packets: fetchscope's stack",
        "Differences",
        "ClientHello",
    ] {
        assert!(text.contains(needle), "missing {needle}:\n{text}");
    }

    // ---- Plain HTTP works through both stacks too.
    let mut args = compare_args("http://www.example.test/");
    args.push("--json".into());
    let out = in_lab(&args);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let done = of_type(&ev, "done");
    assert_eq!(done.len(), 2);
    assert!(
        done.iter()
            .all(|d| d["status"] == 200 && d["tls_version"].is_null())
    );

    // ---- Redirects are followed by both runs alike: on the same connection when it may
    // be reused, on a new one (DNS, TCP, TLS anew) to another host.
    for (path, hops) in [("/redirect/3", 3), ("/to-cdn", 1)] {
        let mut args = compare_args(&format!("https://www.example.test{path}"));
        args.push("--json".into());
        let out = in_lab(&args);
        assert_eq!(
            code(&out),
            0,
            "{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ev = events(&out.stdout);
        let mut shapes = Vec::new();
        for stack in ["userspace", "kernel"] {
            let done = of_type(&ev, "done")
                .into_iter()
                .find(|d| d["stack"] == stack)
                .unwrap_or_else(|| panic!("{path}: {stack} finished"));
            assert_eq!(done["status"], 200, "{path}: {stack}");
            assert_eq!(done["redirects"], hops, "{path}: {stack}");
            let reuse: Vec<bool> = done["exchanges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["reused_connection"].as_bool().unwrap())
                .collect();
            let syns = packets_of(&ev, stack)
                .iter()
                .filter(|p| {
                    p["dir"] == "tx"
                        && p["tcp"]["flags"]
                            .as_array()
                            .is_some_and(|f| f.iter().any(|x| x == "SYN"))
                })
                .count();
            shapes.push((reuse, syns));
        }
        assert_eq!(
            shapes[0], shapes[1],
            "{path}: the same exchanges and connections"
        );
        let last = ev.last().unwrap();
        assert_eq!(
            last["kernel"]["connections"].as_u64().unwrap() as usize,
            shapes[1].1,
            "{path}: connections in the report"
        );
    }

    // ---- A name that does not exist fails the same way in both runs: DNS, exit 4.
    let mut args = compare_args("https://nosuch.example.test/");
    args.push("--json".into());
    let out = in_lab(&args);
    assert_eq!(
        code(&out),
        4,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let errors = of_type(&ev, "error");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().all(|e| e["kind"] == "nxdomain"));

    let _ = std::fs::remove_dir_all(&dir);
}

/// A DNS server that answers an alias with its CNAME record only, as unbound's
/// `local-data` does: `www.example.test` → `edge.example.test` (A 10.88.0.1), and the
/// loop `loop.example.test` → `loop2.example.test` → `loop.example.test`.
const CNAME_ONLY_DNS: &str = r#"
import socket, struct
ALIAS = {"www.example.test": "edge.example.test",
         "loop.example.test": "loop2.example.test",
         "loop2.example.test": "loop.example.test"}
ADDR = {"edge.example.test": "10.88.0.1"}
def wire(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.split(".")) + b"\0"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.88.0.53", 53))
print("ready", flush=True)
while True:
    q, peer = s.recvfrom(4096)
    if len(q) < 17:
        continue
    qid, flags = struct.unpack(">HH", q[:4])
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode("ascii", "replace").lower())
        i += 1 + q[i]
    if i + 5 > len(q):
        continue
    qname, question = ".".join(labels), q[12:i + 5]
    qtype = struct.unpack(">H", q[i + 1:i + 3])[0]
    answer, count, rcode = b"", 0, 0
    if qname in ALIAS:
        target = wire(ALIAS[qname])
        answer = b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 300, len(target)) + target
        count = 1
    elif qname in ADDR:
        if qtype == 1:
            answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + socket.inet_aton(ADDR[qname])
            count = 1
    else:
        rcode = 3
    header = struct.pack(">HHHHHH", qid, 0x8480 | (flags & 0x0100) | rcode, 1, count, 0, 0)
    s.sendto(header + question + answer, peer)
"#;

/// The `dns` events of one stack's run with `event`.
fn dns_of<'a>(ev: &'a [Value], stack: &str, event: &str) -> Vec<&'a Value> {
    of_type(ev, "dns")
        .into_iter()
        .filter(|d| d["stack"] == stack && d["event"] == event)
        .collect()
}

#[test]
fn both_stacks_follow_a_cname_only_answer_and_name_a_loop() {
    if !require(is_root(), "root (network namespaces, TUN, packet capture)") {
        return;
    }
    for tool in ["ip", "nginx", "dnsmasq", "openssl", "python3"] {
        if !require(have(tool), &format!("{tool} for the namespace lab test")) {
            return;
        }
    }
    let _ = fetchscope_bin();
    let _serial = LAB_SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _lab = Lab::up();
    // A second address for the CNAME-only server (dnsmasq keeps 10.88.0.1); it goes
    // with the namespace when the lab is taken down.
    let added = Command::new("ip")
        .args([
            "-n",
            "fscc-srv",
            "addr",
            "add",
            "10.88.0.53/24",
            "dev",
            "fscc-srv0",
        ])
        .status()
        .expect("run ip addr add");
    assert!(added.success(), "ip addr add 10.88.0.53 failed");
    let mut server = fetchscope_tests::netns::Background::spawn(
        {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", "fscc-srv", "python3", "-c", CNAME_ONLY_DNS]);
            c
        },
        "the CNAME-only DNS server",
    );
    server.wait_for_line(false, "ready", Duration::from_secs(20));
    let with_dns = |url: &str| {
        let mut args = compare_args(url);
        let at = args.iter().position(|a| a == "10.88.0.1").expect("--dns");
        args[at] = "10.88.0.53".into();
        args.push("--json".into());
        in_lab(&args)
    };

    // ---- the alias is followed by a second query, its own id, in both stacks
    let out = with_dns("https://www.example.test/");
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    for stack in ["userspace", "kernel"] {
        let queries = dns_of(&ev, stack, "query");
        let answers = dns_of(&ev, stack, "answer");
        assert_eq!(queries.len(), 2, "{stack}: {queries:?}");
        assert_eq!(answers.len(), 2, "{stack}: {answers:?}");
        assert_eq!(answers[0]["cnames"][0], "edge.example.test", "{stack}");
        assert_eq!(queries[1]["name"], "edge.example.test", "{stack}");
        assert_ne!(queries[1]["id"], queries[0]["id"], "{stack}");
        assert!(
            queries[1]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("www.example.test → edge.example.test")),
            "{stack}: {}",
            queries[1]
        );
        assert_eq!(answers[1]["id"], queries[1]["id"], "{stack}");
        assert_eq!(answers[1]["addresses"][0], "10.88.0.1", "{stack}");
        let done: Vec<_> = of_type(&ev, "done")
            .into_iter()
            .filter(|d| d["stack"] == stack)
            .collect();
        assert_eq!(done.len(), 1, "{stack}");
        assert_eq!(done[0]["status"], 200, "{stack}");
    }

    // ---- an alias loop across answers is named as a loop by both
    let out = with_dns("https://loop.example.test/");
    assert_eq!(
        code(&out),
        4,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    for stack in ["userspace", "kernel"] {
        let errors: Vec<_> = of_type(&ev, "error")
            .into_iter()
            .filter(|e| e["stack"] == stack)
            .collect();
        assert_eq!(errors.len(), 1, "{stack}: {errors:?}");
        assert_eq!(errors[0]["kind"], "cname-loop", "{stack}");
        let message = errors[0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(
                "loop.example.test is an alias loop: loop.example.test → loop2.example.test → loop.example.test"
            ),
            "{stack}: {message}"
        );
        assert_eq!(dns_of(&ev, stack, "query").len(), 2, "{stack}");
    }
    server.stop("TERM");
}

/// A DNS server on 10.88.0.54 that truncates every UDP answer (TC set, no records) and
/// answers over TCP: `www.example.test` has A 10.88.0.1 and no AAAA.
const TRUNCATING_DNS: &str = r#"
import socket, struct, threading
def parse(q):
    qid, flags = struct.unpack(">HH", q[:4])
    i = 12
    while i < len(q) and q[i]:
        i += 1 + q[i]
    return qid, flags, q[12:i + 5], struct.unpack(">H", q[i + 1:i + 3])[0]
def answer(q, truncate):
    qid, flags, question, qtype = parse(q)
    records, count = b"", 0
    if not truncate and qtype == 1:
        records = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 300, 4) + socket.inet_aton("10.88.0.1")
        count = 1
    tc = 0x0200 if truncate else 0
    return struct.pack(">HHHHHH", qid, 0x8480 | tc | (flags & 0x0100), 1, count, 0, 0) + question + records
def tcp():
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("10.88.0.54", 53))
    t.listen(8)
    while True:
        c, _ = t.accept()
        data = b""
        while len(data) < 2 or len(data) < 2 + struct.unpack(">H", data[:2])[0]:
            more = c.recv(4096)
            if not more:
                break
            data += more
        if len(data) >= 2:
            reply = answer(data[2:], False)
            c.sendall(struct.pack(">H", len(reply)) + reply)
        c.close()
threading.Thread(target=tcp, daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("10.88.0.54", 53))
print("ready", flush=True)
while True:
    q, peer = u.recvfrom(4096)
    if len(q) >= 17:
        u.sendto(answer(q, True), peer)
"#;

#[test]
fn the_kernel_run_asks_aaaa_on_a_dual_stack_host_and_retries_over_tcp_after_tc() {
    if !require(is_root(), "root (network namespaces, TUN, packet capture)") {
        return;
    }
    for tool in ["ip", "nginx", "dnsmasq", "openssl", "python3"] {
        if !require(have(tool), &format!("{tool} for the namespace lab test")) {
            return;
        }
    }
    let _ = fetchscope_bin();
    let _serial = LAB_SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let _lab = Lab::up();
    let ip = |args: &[&str]| {
        let ok = Command::new("ip")
            .args(args)
            .status()
            .expect("run ip")
            .success();
        assert!(ok, "ip {args:?} failed");
    };
    // The truncating server's address, and an IPv6 address for the kernel's side of the
    // client namespace: the host is dual-stack now, as getaddrinfo would see it. Both go
    // with the namespaces when the lab is taken down.
    ip(&[
        "-n",
        "fscc-srv",
        "addr",
        "add",
        "10.88.0.54/24",
        "dev",
        "fscc-srv0",
    ]);
    // The lab turns IPv6 off in its namespaces: on again for this veth only.
    let sysctl = Command::new("ip")
        .args(["netns", "exec", CLI_NS, "sysctl", "-qw"])
        .arg(format!("net.ipv6.conf.{VETH}.disable_ipv6=0"))
        .status()
        .expect("run sysctl");
    assert!(sysctl.success(), "could not turn IPv6 on for {VETH}");
    ip(&[
        "-n",
        CLI_NS,
        "addr",
        "add",
        "fd00:88:9::2/64",
        "dev",
        VETH,
        "nodad",
    ]);
    let mut server = fetchscope_tests::netns::Background::spawn(
        {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", "fscc-srv", "python3", "-c", TRUNCATING_DNS]);
            c
        },
        "the truncating DNS server",
    );
    server.wait_for_line(false, "ready", Duration::from_secs(20));
    let mut args = compare_args("https://www.example.test/");
    let at = args.iter().position(|a| a == "10.88.0.1").expect("--dns");
    args[at] = "10.88.0.54".into();
    args.push("--json".into());
    let out = in_lab(&args);
    assert_eq!(
        code(&out),
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out.stdout);
    let qtypes = |stack: &str, event: &str| -> Vec<String> {
        let mut t: Vec<String> = dns_of(&ev, stack, event)
            .iter()
            .filter_map(|d| d["qtype"].as_str().map(str::to_string))
            .collect();
        t.sort();
        t
    };
    // The kernel run: the host has IPv6, so AAAA and A, both truncated, both asked
    // again over TCP (its packets in the capture), the A answer used.
    assert_eq!(qtypes("kernel", "query"), ["A", "AAAA"], "{ev:?}");
    assert_eq!(qtypes("kernel", "truncated"), ["A", "AAAA"]);
    let answers = dns_of(&ev, "kernel", "answer");
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers.iter().all(|a| a["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("over TCP"))),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|a| a["addresses"][0] == "10.88.0.1"),
        "{answers:?}"
    );
    let dns_tcp = packets_of(&ev, "kernel")
        .into_iter()
        .filter(|p| p["tcp"]["dst_port"] == 53 || p["tcp"]["src_port"] == 53)
        .count();
    assert!(
        dns_tcp >= 6,
        "the DNS-over-TCP packets are in the kernel run: {dns_tcp}"
    );
    // fetchscope's own stack has only the IPv4 address it was given: A only.
    assert_eq!(qtypes("userspace", "query"), ["A"]);
    assert_eq!(qtypes("userspace", "truncated"), ["A"]);
    for stack in ["userspace", "kernel"] {
        let done: Vec<_> = of_type(&ev, "done")
            .into_iter()
            .filter(|d| d["stack"] == stack)
            .collect();
        assert_eq!(done.len(), 1, "{stack}");
        assert_eq!(done[0]["status"], 200, "{stack}");
    }
}
