// SPDX-License-Identifier: MIT
//! tokio's side of urt's benchmark suite.
//!
//! The same workloads as tools/bench/urt/bench.c and peers/go/main.go, in the
//! same order, with the same sizes and output; tools/bench/README.md is the
//! specification. Usage: `tokio-bench WORKLOAD WORKERS SCALE SAMPLES`.
//! Written for the tokio (1.24) and rustc (1.63) that Debian packages.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc as stdmpsc, Arc};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot, watch, Mutex};

struct Bench {
    workload: String,
    workers: usize,
    scale: f64,
    samples: i32,
}

static mut BENCH: Option<Bench> = None;

fn bench() -> &'static Bench {
    unsafe { BENCH.as_ref().unwrap() }
}

fn sized(n: usize) -> usize {
    let v = (n as f64 * bench().scale) as usize;
    if v == 0 {
        1
    } else {
        v
    }
}

fn report(sample: i32, ops: usize, value: f64, unit: &str) {
    if sample < 0 {
        return; // the warm-up iteration
    }
    let b = bench();
    println!(
        "RESULT workload={} runtime=tokio workers={} sample={} ops={} value={:.2} unit={}",
        b.workload, b.workers, sample, ops, value, unit
    );
}

fn per_op(t0: Instant, ops: usize) -> f64 {
    t0.elapsed().as_nanos() as f64 / ops as f64
}

fn sample_range() -> std::ops::Range<i32> {
    -1..bench().samples
}

fn spin_for(d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        std::hint::spin_loop();
    }
}

// ------------------------------------------------------- spawn_many_local

async fn spawn_many_local() {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let rem = Arc::new(AtomicUsize::new(0));
    for sample in sample_range() {
        let n = sized(10_000);
        let t0 = Instant::now();
        rem.store(n, Relaxed);
        for _ in 0..n {
            let tx = tx.clone();
            let rem = rem.clone();
            tokio::spawn(async move {
                if 1 == rem.fetch_sub(1, Relaxed) {
                    tx.send(()).await.unwrap();
                }
            });
        }
        rx.recv().await.unwrap();
        report(sample, n, per_op(t0, n), "ns/op");
    }
}

// --------------------------------------------- spawn_many_remote_{idle,busy}

fn spawn_many_remote(rt: &Runtime, busy: bool) {
    let stop = Arc::new(AtomicBool::new(false));
    let mut busy_handles = Vec::new();
    if busy {
        for _ in 0..(2 * bench().workers) {
            let stop = stop.clone();
            busy_handles.push(rt.spawn(async move {
                while !stop.load(Relaxed) {
                    tokio::task::yield_now().await;
                    std::thread::sleep(Duration::from_micros(10));
                }
            }));
        }
    }
    let mut handles = Vec::with_capacity(sized(10_000));
    for sample in sample_range() {
        let n = sized(10_000);
        let t0 = Instant::now();
        for _ in 0..n {
            handles.push(rt.spawn(async {}));
        }
        rt.block_on(async {
            for handle in handles.drain(..) {
                handle.await.unwrap();
            }
        });
        report(sample, n, per_op(t0, n), "ns/op");
    }
    stop.store(true, Relaxed);
    rt.block_on(async {
        for h in busy_handles {
            h.await.unwrap();
        }
    });
}

// -------------------------------------------------------------- yield_many

const YIELD_TASKS: usize = 200;

fn yield_many(rt: &Runtime) {
    let (tx, rx) = stdmpsc::sync_channel(YIELD_TASKS);
    for sample in sample_range() {
        let n = sized(1000);
        let t0 = Instant::now();
        for _ in 0..YIELD_TASKS {
            let tx = tx.clone();
            rt.spawn(async move {
                for _ in 0..n {
                    tokio::task::yield_now().await;
                }
                tx.send(()).unwrap();
            });
        }
        for _ in 0..YIELD_TASKS {
            rx.recv().unwrap();
        }
        report(sample, n * YIELD_TASKS, per_op(t0, n * YIELD_TASKS), "ns/op");
    }
}

// --------------------------------------------------------------- ping_pong

async fn ping_pong() {
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let rem = Arc::new(AtomicUsize::new(0));
    for sample in sample_range() {
        let n = sized(1000);
        let reps = 10;
        let t0 = Instant::now();
        for _ in 0..reps {
            rem.store(n, Relaxed);
            let done_tx = done_tx.clone();
            let rem = rem.clone();
            tokio::spawn(async move {
                for _ in 0..n {
                    let rem = rem.clone();
                    let done_tx = done_tx.clone();
                    tokio::spawn(async move {
                        let (tx1, rx1) = oneshot::channel::<()>();
                        let (tx2, rx2) = oneshot::channel::<()>();
                        tokio::spawn(async move {
                            rx1.await.unwrap();
                            tx2.send(()).unwrap();
                        });
                        tx1.send(()).unwrap();
                        rx2.await.unwrap();
                        if 1 == rem.fetch_sub(1, Relaxed) {
                            done_tx.send(()).await.unwrap();
                        }
                    });
                }
            });
            done_rx.recv().await.unwrap();
        }
        report(sample, n * reps, per_op(t0, n * reps), "ns/op");
    }
}

// ----------------------------------------------------------- chained_spawn

fn chain(done_tx: mpsc::Sender<()>, n: usize) {
    if n == 0 {
        done_tx.try_send(()).unwrap();
    } else {
        tokio::spawn(async move {
            chain(done_tx, n - 1);
        });
    }
}

async fn chained_spawn() {
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    for sample in sample_range() {
        let n = sized(1000);
        let reps = 20;
        let t0 = Instant::now();
        for _ in 0..reps {
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                chain(done_tx, n);
            });
            done_rx.recv().await.unwrap();
        }
        report(sample, n * reps, per_op(t0, n * reps), "ns/op");
    }
}

// ----------------------------------------------------------- chan_pingpong

async fn chan_pingpong() {
    let (a_tx, mut a_rx) = mpsc::channel::<u64>(1);
    let (b_tx, mut b_rx) = mpsc::channel::<u64>(1);
    let bouncer = tokio::spawn(async move {
        while let Some(v) = a_rx.recv().await {
            b_tx.send(v).await.unwrap();
        }
    });
    for sample in sample_range() {
        let n = sized(20_000);
        let t0 = Instant::now();
        for i in 0..n as u64 {
            a_tx.send(i).await.unwrap();
            b_rx.recv().await.unwrap();
        }
        report(sample, n, per_op(t0, n), "ns/op");
    }
    drop(a_tx);
    bouncer.await.unwrap();
}

// --------------------------------------------------------------- chan_mpmc

// tokio has no MPMC channel: the consumers share the receiver of a bounded
// mpsc channel behind an async mutex, the usual way to fan out with tokio.
const MPMC_SIDES: usize = 4;

async fn chan_mpmc() {
    for sample in sample_range() {
        let per = sized(100_000) / MPMC_SIDES;
        let t0 = Instant::now();
        let (tx, rx) = mpsc::channel::<u64>(256);
        let rx = Arc::new(Mutex::new(rx));
        let mut consumers = Vec::new();
        let mut producers = Vec::new();
        for _ in 0..MPMC_SIDES {
            let rx = rx.clone();
            consumers.push(tokio::spawn(async move {
                let mut sum = 0u64;
                loop {
                    let v = rx.lock().await.recv().await;
                    match v {
                        Some(v) => sum += v,
                        None => break,
                    }
                }
                sum
            }));
            let tx = tx.clone();
            producers.push(tokio::spawn(async move {
                for i in 0..per as u64 {
                    tx.send(i).await.unwrap();
                }
            }));
        }
        drop(tx);
        for p in producers {
            p.await.unwrap();
        }
        for c in consumers {
            c.await.unwrap();
        }
        report(sample, per * MPMC_SIDES, per_op(t0, per * MPMC_SIDES), "ns/op");
    }
}

// ------------------------------------------------------------------ timers

const TIMER_SLEEPS: usize = 5;

fn lcg(s: &mut u32) -> u32 {
    *s = s.wrapping_mul(1664525).wrapping_add(1013904223);
    *s >> 8
}

async fn timers() {
    for sample in sample_range() {
        let n = sized(10_000);
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            handles.push(tokio::spawn(async move {
                let mut seed = i as u32;
                for _ in 0..TIMER_SLEEPS {
                    tokio::time::sleep(Duration::from_micros((lcg(&mut seed) % 1000) as u64)).await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        report(sample, n * TIMER_SLEEPS, per_op(t0, n * TIMER_SLEEPS), "ns/op");
    }
}

// ---------------------------------------------------------------- tcp_echo

const ECHO_MSG: usize = 64;

async fn tcp_echo() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            sock.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if sock.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    for sample in sample_range() {
        let conns = sized(100);
        let rounds = 50;
        let t0 = Instant::now();
        let mut clients = Vec::with_capacity(conns);
        for _ in 0..conns {
            clients.push(tokio::spawn(async move {
                let mut sock = TcpStream::connect(addr).await.unwrap();
                sock.set_nodelay(true).unwrap();
                let out = [b'x'; ECHO_MSG];
                let mut inb = [0u8; ECHO_MSG];
                for _ in 0..rounds {
                    sock.write_all(&out).await.unwrap();
                    sock.read_exact(&mut inb).await.unwrap();
                }
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        report(sample, conns * rounds, per_op(t0, conns * rounds), "ns/op");
    }
    server.abort();
}

// -------------------------------------------------------------- starvation

const STARVE_BLOCK: Duration = Duration::from_millis(100);
const STARVE_SHORT: usize = 100;
const STARVE_WORK: Duration = Duration::from_micros(100);

#[derive(Clone, Copy)]
enum Block {
    None,
    Sleep,
    Read,
    Spin,
}

fn starvation(rt: &Runtime, kind: Block) {
    let epoch = Instant::now();
    for sample in sample_range() {
        let started = Arc::new(AtomicI64::new(-1));
        let mut pipe = [-1i32; 2];
        let mut writer = None;
        if let Block::Read = kind {
            assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
            let wfd = pipe[1];
            writer = Some(std::thread::spawn(move || {
                std::thread::sleep(STARVE_BLOCK);
                assert_eq!(unsafe { libc::write(wfd, b"x".as_ptr() as *const _, 1) }, 1);
            }));
        }
        let st = started.clone();
        let rfd = pipe[0];
        let blocker = rt.spawn(async move {
            st.store(epoch.elapsed().as_nanos() as i64, Relaxed);
            match kind {
                Block::None => {}
                Block::Sleep => std::thread::sleep(STARVE_BLOCK),
                Block::Read => {
                    let mut c = 0u8;
                    let r = unsafe { libc::read(rfd, &mut c as *mut u8 as *mut _, 1) };
                    assert_eq!(r, 1);
                }
                Block::Spin => spin_for(STARVE_BLOCK),
            }
        });
        while started.load(Relaxed) < 0 {
            std::thread::sleep(Duration::from_micros(50));
        }
        let t0 = epoch + Duration::from_nanos(started.load(Relaxed) as u64) + Duration::from_millis(1);
        while Instant::now() < t0 {
            std::thread::sleep(Duration::from_micros(50));
        }
        let shorts: Vec<_> = (0..STARVE_SHORT)
            .map(|_| rt.spawn(async { spin_for(STARVE_WORK) }))
            .collect();
        rt.block_on(async {
            for s in shorts {
                s.await.unwrap();
            }
        });
        report(sample, STARVE_SHORT, t0.elapsed().as_nanos() as f64 / 1e6, "ms");
        rt.block_on(blocker).unwrap();
        if let Some(w) = writer {
            w.join().unwrap();
            unsafe {
                libc::close(pipe[0]);
                libc::close(pipe[1]);
            }
        }
    }
}

// ----------------------------------------------------------------- idle_mem

const IDLE_GROUP: usize = 1000;

fn rss_bytes() -> i64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let resident: i64 = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    resident * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as i64
}

async fn idle_mem() {
    let n = sized(1_000_000);
    let waiting = Arc::new(AtomicUsize::new(0));
    let groups: Vec<_> = (0..(n + IDLE_GROUP - 1) / IDLE_GROUP)
        .map(|_| watch::channel(0u8))
        .collect();
    tokio::time::sleep(Duration::from_millis(10)).await;
    let before = rss_bytes();
    for i in 0..n {
        let mut rx = groups[i / IDLE_GROUP].1.clone();
        let waiting = waiting.clone();
        tokio::spawn(async move {
            waiting.fetch_add(1, Relaxed);
            let _ = rx.changed().await; // Err when the sender is dropped
        });
        if i % 1024 == 0 {
            tokio::task::yield_now().await;
        }
    }
    while waiting.load(Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    report(0, n, (rss_bytes() - before) as f64 / n as f64, "B/task");
    drop(groups);
}

// -------------------------------------------------------------------- main

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: {} WORKLOAD WORKERS SCALE SAMPLES", args[0]);
        std::process::exit(2);
    }
    unsafe {
        BENCH = Some(Bench {
            workload: args[1].clone(),
            workers: args[2].parse().unwrap(),
            scale: args[3].parse().unwrap(),
            samples: args[4].parse().unwrap(),
        });
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(bench().workers)
        .enable_all()
        .build()
        .unwrap();
    // Workloads that run inside the runtime run as one spawned task, so
    // that all of their spawns are local to a worker (as urt's main fiber).
    let inside = |f: fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
        rt.block_on(rt.spawn(f())).unwrap()
    };
    match args[1].as_str() {
        "spawn_many_local" => inside(|| Box::pin(spawn_many_local())),
        "spawn_many_remote_idle" => spawn_many_remote(&rt, false),
        "spawn_many_remote_busy" => spawn_many_remote(&rt, true),
        "yield_many" => yield_many(&rt),
        "ping_pong" => inside(|| Box::pin(ping_pong())),
        "chained_spawn" => inside(|| Box::pin(chained_spawn())),
        "chan_pingpong" => inside(|| Box::pin(chan_pingpong())),
        "chan_mpmc" => inside(|| Box::pin(chan_mpmc())),
        "timers" => inside(|| Box::pin(timers())),
        "tcp_echo" => inside(|| Box::pin(tcp_echo())),
        "starve_none" => starvation(&rt, Block::None),
        "starve_sleep" => starvation(&rt, Block::Sleep),
        "starve_read" => starvation(&rt, Block::Read),
        "starve_spin" => starvation(&rt, Block::Spin),
        "idle_mem" => inside(|| Box::pin(idle_mem())),
        w => {
            eprintln!("tokio-bench: unknown workload {}", w);
            std::process::exit(2);
        }
    }
    // Tasks still waiting (the echo server, idle_mem's) are dropped here.
    rt.shutdown_timeout(Duration::from_secs(1));
}
