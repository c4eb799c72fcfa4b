// SPDX-License-Identifier: MIT

// Go's side of urt's benchmark suite.
//
// The same workloads as tools/bench/urt/bench.c and peers/tokio/src/main.rs,
// in the same order, with the same sizes and output; tools/bench/README.md is
// the specification. Usage: go-bench WORKLOAD WORKERS SCALE SAMPLES.
// WORKERS sets GOMAXPROCS. Standard library only (Go 1.19, as Debian has it).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	workload string
	workers  int
	scale    float64
	samples  int
)

func sized(n int) int {
	v := int(float64(n) * scale)
	if v == 0 {
		return 1
	}
	return v
}

func report(sample, ops int, value float64, unit string) {
	if sample < 0 {
		return // the warm-up iteration
	}
	fmt.Printf("RESULT workload=%s runtime=go workers=%d sample=%d ops=%d value=%.2f unit=%s\n",
		workload, workers, sample, ops, value, unit)
}

func perOp(t0 time.Time, ops int) float64 {
	return float64(time.Since(t0).Nanoseconds()) / float64(ops)
}

func spinFor(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
	}
}

// ------------------------------------------------------- spawn_many_local

func spawnManyLocal() {
	done := make(chan struct{}, 1)
	var rem int64
	for s := -1; s < samples; s++ {
		n := sized(10000)
		t0 := time.Now()
		atomic.StoreInt64(&rem, int64(n))
		for i := 0; i < n; i++ {
			go func() {
				if atomic.AddInt64(&rem, -1) == 0 {
					done <- struct{}{}
				}
			}()
		}
		<-done
		report(s, n, perOp(t0, n), "ns/op")
	}
}

// --------------------------------------------- spawn_many_remote_{idle,busy}

// Go has no "outside the runtime": every goroutine is spawned from a
// goroutine, so "remote" spawns come from main, which then waits for all.
func spawnManyRemote(busy bool) {
	var stop int32
	var bwg sync.WaitGroup
	if busy {
		for i := 0; i < 2*workers; i++ {
			bwg.Add(1)
			go func() {
				defer bwg.Done()
				for atomic.LoadInt32(&stop) == 0 {
					runtime.Gosched()
					// a thread-blocking 10 us sleep, as the others do
					ts := syscall.Timespec{Nsec: 10000}
					syscall.Nanosleep(&ts, nil)
				}
			}()
		}
	}
	for s := -1; s < samples; s++ {
		n := sized(10000)
		t0 := time.Now()
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		report(s, n, perOp(t0, n), "ns/op")
	}
	atomic.StoreInt32(&stop, 1)
	bwg.Wait()
}

// -------------------------------------------------------------- yield_many

const yieldTasks = 200

func yieldMany() {
	for s := -1; s < samples; s++ {
		n := sized(1000)
		t0 := time.Now()
		var wg sync.WaitGroup
		wg.Add(yieldTasks)
		for i := 0; i < yieldTasks; i++ {
			go func() {
				for j := 0; j < n; j++ {
					runtime.Gosched()
				}
				wg.Done()
			}()
		}
		wg.Wait()
		report(s, n*yieldTasks, perOp(t0, n*yieldTasks), "ns/op")
	}
}

// --------------------------------------------------------------- ping_pong

func pingPong() {
	done := make(chan struct{}, 1)
	var rem int64
	for s := -1; s < samples; s++ {
		n := sized(1000)
		reps := 10
		t0 := time.Now()
		for r := 0; r < reps; r++ {
			atomic.StoreInt64(&rem, int64(n))
			go func() {
				for i := 0; i < n; i++ {
					go func() {
						ping := make(chan struct{}, 1)
						pong := make(chan struct{}, 1)
						go func() {
							<-ping
							pong <- struct{}{}
						}()
						ping <- struct{}{}
						<-pong
						if atomic.AddInt64(&rem, -1) == 0 {
							done <- struct{}{}
						}
					}()
				}
			}()
			<-done
		}
		report(s, n*reps, perOp(t0, n*reps), "ns/op")
	}
}

// ----------------------------------------------------------- chained_spawn

func chain(done chan struct{}, n int) {
	if n == 0 {
		done <- struct{}{}
	} else {
		go chain(done, n-1)
	}
}

func chainedSpawn() {
	done := make(chan struct{}, 1)
	for s := -1; s < samples; s++ {
		n := sized(1000)
		reps := 20
		t0 := time.Now()
		for r := 0; r < reps; r++ {
			go chain(done, n)
			<-done
		}
		report(s, n*reps, perOp(t0, n*reps), "ns/op")
	}
}

// ----------------------------------------------------------- chan_pingpong

func chanPingpong() {
	a := make(chan uint64, 1)
	b := make(chan uint64, 1)
	go func() {
		for v := range a {
			b <- v
		}
	}()
	for s := -1; s < samples; s++ {
		n := sized(20000)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			a <- uint64(i)
			<-b
		}
		report(s, n, perOp(t0, n), "ns/op")
	}
	close(a)
}

// --------------------------------------------------------------- chan_mpmc

const mpmcSides = 4

func chanMpmc() {
	for s := -1; s < samples; s++ {
		per := sized(100000) / mpmcSides
		t0 := time.Now()
		ch := make(chan uint64, 256)
		var prod, cons sync.WaitGroup
		prod.Add(mpmcSides)
		cons.Add(mpmcSides)
		for i := 0; i < mpmcSides; i++ {
			go func() {
				var sum uint64
				for v := range ch {
					sum += v
				}
				_ = sum
				cons.Done()
			}()
			go func() {
				for j := 0; j < per; j++ {
					ch <- uint64(j)
				}
				prod.Done()
			}()
		}
		prod.Wait()
		close(ch)
		cons.Wait()
		report(s, per*mpmcSides, perOp(t0, per*mpmcSides), "ns/op")
	}
}

// ------------------------------------------------------------------ timers

const timerSleeps = 5

func lcg(s *uint32) uint32 {
	*s = *s*1664525 + 1013904223
	return *s >> 8
}

func timers() {
	for s := -1; s < samples; s++ {
		n := sized(10000)
		t0 := time.Now()
		var wg sync.WaitGroup
		wg.Add(n)
		for i := 0; i < n; i++ {
			go func(seed uint32) {
				for j := 0; j < timerSleeps; j++ {
					time.Sleep(time.Duration(lcg(&seed)%1000) * time.Microsecond)
				}
				wg.Done()
			}(uint32(i))
		}
		wg.Wait()
		report(s, n*timerSleeps, perOp(t0, n*timerSleeps), "ns/op")
	}
}

// ---------------------------------------------------------------- tcp_echo

const echoMsg = 64

func must(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-bench: %s: %v\n", workload, err)
		os.Exit(1)
	}
}

func tcpEcho() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					if err != nil {
						break
					}
					if _, err := c.Write(buf[:n]); err != nil {
						break
					}
				}
				c.Close()
			}(c)
		}
	}()
	addr := ln.Addr().String()
	for s := -1; s < samples; s++ {
		conns := sized(100)
		rounds := 50
		t0 := time.Now()
		var wg sync.WaitGroup
		wg.Add(conns)
		for i := 0; i < conns; i++ {
			go func() {
				c, err := net.Dial("tcp", addr) // Go sets TCP_NODELAY by default
				must(err)
				out := make([]byte, echoMsg)
				in := make([]byte, echoMsg)
				for j := 0; j < rounds; j++ {
					_, err := c.Write(out)
					must(err)
					_, err = io.ReadFull(c, in)
					must(err)
				}
				c.Close()
				wg.Done()
			}()
		}
		wg.Wait()
		report(s, conns*rounds, perOp(t0, conns*rounds), "ns/op")
	}
	ln.Close()
}

// -------------------------------------------------------------- starvation

const (
	starveBlock = 100 * time.Millisecond
	starveShort = 100
	starveWork  = 100 * time.Microsecond
)

// starve_none is the same without the block: the measured ideal.
// The blocker blocks its thread the way C code would: a nanosleep or a
// read(2) through package syscall (the runtime notices the thread is in a
// system call), or a busy loop. time.Sleep would only park the goroutine.
func starvation(kind string) {
	for s := -1; s < samples; s++ {
		var started int64
		var fds [2]int
		if kind == "read" {
			must(syscall.Pipe(fds[:]))
			go func() {
				ts := syscall.NsecToTimespec(int64(starveBlock))
				syscall.Nanosleep(&ts, nil)
				syscall.Write(fds[1], []byte("x"))
			}()
		}
		bdone := make(chan struct{})
		go func() {
			atomic.StoreInt64(&started, time.Now().UnixNano())
			switch kind {
			case "sleep":
				ts := syscall.NsecToTimespec(int64(starveBlock))
				syscall.Nanosleep(&ts, nil)
			case "read":
				var c [1]byte
				syscall.Read(fds[0], c[:])
			case "spin":
				spinFor(starveBlock)
			}
			close(bdone)
		}()
		for atomic.LoadInt64(&started) == 0 {
			time.Sleep(50 * time.Microsecond)
		}
		t0 := time.Unix(0, atomic.LoadInt64(&started)).Add(time.Millisecond)
		for time.Now().Before(t0) {
			time.Sleep(50 * time.Microsecond)
		}
		var wg sync.WaitGroup
		wg.Add(starveShort)
		for i := 0; i < starveShort; i++ {
			go func() {
				spinFor(starveWork)
				wg.Done()
			}()
		}
		wg.Wait()
		report(s, starveShort, float64(time.Since(t0).Nanoseconds())/1e6, "ms")
		<-bdone
		if kind == "read" {
			syscall.Close(fds[0])
			syscall.Close(fds[1])
		}
	}
}

// ----------------------------------------------------------------- idle_mem

const idleGroup = 1000

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	must(err)
	f := strings.Fields(string(b))
	pages, err := strconv.ParseInt(f[1], 10, 64)
	must(err)
	return pages * int64(os.Getpagesize())
}

func idleMem() {
	n := sized(1000000)
	groups := make([]chan struct{}, (n+idleGroup-1)/idleGroup)
	for i := range groups {
		groups[i] = make(chan struct{})
	}
	var waiting int64
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	before := rssBytes()
	for i := 0; i < n; i++ {
		ch := groups[i/idleGroup]
		go func() {
			atomic.AddInt64(&waiting, 1)
			<-ch // returns when closed at the end
		}()
	}
	for atomic.LoadInt64(&waiting) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	report(0, n, float64(rssBytes()-before)/float64(n), "B/task")
	for _, ch := range groups {
		close(ch)
	}
}

// -------------------------------------------------------------------- main

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintf(os.Stderr, "usage: %s WORKLOAD WORKERS SCALE SAMPLES\n", os.Args[0])
		os.Exit(2)
	}
	workload = os.Args[1]
	var err error
	workers, err = strconv.Atoi(os.Args[2])
	must(err)
	scale, err = strconv.ParseFloat(os.Args[3], 64)
	must(err)
	samples, err = strconv.Atoi(os.Args[4])
	must(err)
	runtime.GOMAXPROCS(workers)

	switch workload {
	case "spawn_many_local":
		spawnManyLocal()
	case "spawn_many_remote_idle":
		spawnManyRemote(false)
	case "spawn_many_remote_busy":
		spawnManyRemote(true)
	case "yield_many":
		yieldMany()
	case "ping_pong":
		pingPong()
	case "chained_spawn":
		chainedSpawn()
	case "chan_pingpong":
		chanPingpong()
	case "chan_mpmc":
		chanMpmc()
	case "timers":
		timers()
	case "tcp_echo":
		tcpEcho()
	case "starve_none":
		starvation("none")
	case "starve_sleep":
		starvation("sleep")
	case "starve_read":
		starvation("read")
	case "starve_spin":
		starvation("spin")
	case "idle_mem":
		idleMem()
	default:
		fmt.Fprintf(os.Stderr, "go-bench: unknown workload %s\n", workload)
		os.Exit(2)
	}
}
