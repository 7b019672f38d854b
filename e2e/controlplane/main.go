// Command controlplane runs a local Kubernetes control plane for end-to-end
// tests: embedded etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler and kwok (fake nodes and pods), all on 127.0.0.1.
//
// The launcher keeps etcd in its own process and runs the other components
// as child processes of the same binary ("controlplane kube-apiserver ...",
// etc.), so each keeps the unmodified upstream command with its own global
// state (feature gates, signal handling, metrics registries). Children are
// started with PR_SET_PDEATHSIG and also watch their parent, so they never
// outlive the launcher.
//
// SIGUSR1 (once ready) restarts the kube-apiserver child, for fault-injection
// tests; see restartAPIServer.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/component-base/cli"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	kcmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

const (
	markerFile = ".controlplane-data-dir"
	// restartsFile counts the completed kube-apiserver restarts (SIGUSR1).
	restartsFile = "apiserver-restarts"

	componentGrace = 10 * time.Second // SIGTERM -> SIGKILL: controller-manager, scheduler, kwok
	apiserverGrace = 20 * time.Second // SIGTERM -> SIGKILL: kube-apiserver
)

var errInterrupted = errors.New("interrupted during startup")

func main() {
	if len(os.Args) > 1 {
		if run, ok := subcommands[os.Args[1]]; ok {
			watchParent()
			os.Exit(run(os.Args[2:]))
		}
	}
	os.Exit(launch(os.Args[1:]))
}

// subcommands are the components that run as child processes.
var subcommands = map[string]func(args []string) int{
	"kube-apiserver":          func(a []string) int { return runCobra(apiserverapp.NewAPIServerCommand(), a) },
	"kube-controller-manager": func(a []string) int { return runCobra(kcmapp.NewControllerManagerCommand(), a) },
	"kube-scheduler":          func(a []string) int { return runCobra(schedulerapp.NewSchedulerCommand(), a) },
	"kwok":                    runKwok,
}

func runCobra(cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	return cli.Run(cmd)
}

// watchParent makes a child exit when the launcher is gone (a second line of
// defence behind PR_SET_PDEATHSIG, which is tied to the spawning OS thread).
func watchParent() {
	want, err := strconv.Atoi(os.Getenv("CONTROLPLANE_PARENT_PID"))
	if err != nil {
		return
	}
	go func() {
		for {
			if os.Getppid() != want {
				fmt.Fprintf(os.Stderr, "controlplane: parent %d is gone, exiting\n", want)
				os.Exit(1)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
}

type options struct {
	dataDir        string
	nodes          int
	apiserverPort  int
	startupTimeout time.Duration
	controllers    string
	verbosity      int
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "controlplane: "+format+"\n", args...)
}

func launch(args []string) int {
	start := time.Now()
	fs := flag.NewFlagSet("controlplane", flag.ContinueOnError)
	var o options
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for etcd data, certificates, kubeconfigs and logs (required; wiped at start)")
	fs.IntVar(&o.nodes, "nodes", 2, "number of fake (kwok) nodes to create, named node-1..node-N")
	fs.IntVar(&o.apiserverPort, "apiserver-port", 0, "kube-apiserver secure port on 127.0.0.1 (0: pick a free port)")
	fs.DurationVar(&o.startupTimeout, "startup-timeout", 2*time.Minute, "give up if the control plane is not ready within this time")
	fs.StringVar(&o.controllers, "controllers", "*", "value of kube-controller-manager --controllers")
	fs.IntVar(&o.verbosity, "v", 1, "log verbosity (-v) of the Kubernetes components (logs go to <data-dir>/logs)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: controlplane --data-dir DIR [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.dataDir == "" || fs.NArg() != 0 {
		fs.Usage()
		return 2
	}
	if o.nodes < 0 || o.nodes > 250 {
		logf("--nodes must be between 0 and 250")
		return 2
	}
	dir, err := filepath.Abs(o.dataDir)
	if err != nil {
		logf("%v", err)
		return 1
	}
	o.dataDir = dir

	cp := &controlPlane{opts: o, start: start, interrupted: make(chan struct{}), restartReq: make(chan time.Time, 1)}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		logf("received %v, shutting down", s)
		close(cp.interrupted)
		s = <-sigs
		logf("received %v again, exiting without waiting for the components", s)
		os.Exit(1) // children still die: PR_SET_PDEATHSIG
	}()
	// SIGUSR1 asks for a kube-apiserver restart. Caught from the start: its
	// default action would kill the launcher.
	usr1 := make(chan os.Signal, 4)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			switch {
			case isClosed(cp.interrupted):
				logf("received SIGUSR1 while shutting down, ignored")
			case !cp.ready.Load():
				logf("received SIGUSR1 before the control plane is ready, ignored")
			default:
				select {
				case cp.restartReq <- time.Now():
				default:
					logf("received SIGUSR1 while a kube-apiserver restart is pending, ignored")
				}
			}
		}
	}()
	err = cp.run(context.Background())
	cp.shutdown()
	if err != nil && !errors.Is(err, errInterrupted) {
		logf("error: %v", err)
		return 1
	}
	logf("stopped")
	return 0
}

type controlPlane struct {
	opts  options
	start time.Time

	pki            *pki
	kubeconfig     string
	apiserverURL   string
	apiserverArgv  []string // kept for restarts: same port, same etcd
	etcd           *embeddedEtcd
	mu             sync.Mutex
	children       []*child
	childExited    chan *child
	interrupted    chan struct{}
	shutdownCalled bool
	ownsDataDir    bool // false if the data dir was refused: touch nothing there

	ready      atomic.Bool    // the ready file was written: SIGUSR1 is honoured
	restartReq chan time.Time // SIGUSR1 -> run loop (time the signal arrived)
	restarts   int            // completed kube-apiserver restarts (run loop only)
}

func (cp *controlPlane) path(elem ...string) string {
	return filepath.Join(append([]string{cp.opts.dataDir}, elem...)...)
}

func (cp *controlPlane) run(ctx context.Context) error {
	if err := prepareDataDir(cp.opts.dataDir); err != nil {
		return err
	}
	cp.ownsDataDir = true
	if err := os.WriteFile(cp.path("controlplane.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	cp.childExited = make(chan *child, 8)

	ports, err := freePorts(5)
	if err != nil {
		return err
	}
	etcdClientPort, etcdPeerPort, kcmPort, schedPort := ports[0], ports[1], ports[2], ports[3]
	apiPort := cp.opts.apiserverPort
	if apiPort == 0 {
		apiPort = ports[4]
	}
	cp.apiserverURL = fmt.Sprintf("https://127.0.0.1:%d", apiPort)

	if err := cp.writeCredentials(); err != nil {
		return fmt.Errorf("writing certificates: %w", err)
	}
	fmt.Printf("kubeconfig: %s\n", cp.kubeconfig)
	logf("kube-apiserver: %s, logs: %s", cp.apiserverURL, cp.path("logs"))

	cp.etcd, err = startEtcd(cp.path("etcd"), cp.path("logs", "etcd.log"), etcdClientPort, etcdPeerPort)
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	logf("etcd ready on 127.0.0.1:%d (%.1fs)", etcdClientPort, time.Since(cp.start).Seconds())

	startupCtx, cancel := context.WithTimeoutCause(ctx, cp.opts.startupTimeout,
		fmt.Errorf("not ready within --startup-timeout=%s", cp.opts.startupTimeout))
	defer cancel()

	cp.apiserverArgv = cp.apiserverArgs(apiPort, etcdClientPort)
	apiserver, err := cp.spawn("kube-apiserver", cp.apiserverArgv)
	if err != nil {
		return err
	}
	cs, err := cp.clientset()
	if err != nil {
		return err
	}
	if err := cp.waitFor(startupCtx, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		return apiserverReady(ctx, cs)
	}); err != nil {
		return err
	}
	logf("kube-apiserver ready (%.1fs)", time.Since(cp.start).Seconds())

	if _, err := cp.spawn("kube-controller-manager", cp.kcmArgs(kcmPort)); err != nil {
		return err
	}
	if _, err := cp.spawn("kube-scheduler", cp.schedulerArgs(schedPort)); err != nil {
		return err
	}
	if _, err := cp.spawn("kwok", cp.kwokArgs()); err != nil {
		return err
	}
	for i := 1; i <= cp.opts.nodes; i++ {
		if err := createNode(startupCtx, cs, i); err != nil {
			return fmt.Errorf("creating node-%d: %w", i, err)
		}
	}
	if err := cp.waitFor(startupCtx, "default namespace, default ServiceAccount and Ready nodes", func(ctx context.Context) (bool, error) {
		return clusterReady(ctx, cs, cp.opts.nodes)
	}); err != nil {
		return err
	}
	cancel()

	readyFile := cp.path("ready")
	if err := writeFileAtomic(readyFile, []byte(cp.kubeconfig+"\n")); err != nil {
		return err
	}
	logf("ready in %.1fs: %s", time.Since(cp.start).Seconds(), readyFile)
	fmt.Printf("ready: %s\n", readyFile)
	cp.ready.Store(true)

	// Run until SIGINT/SIGTERM arrives or a component dies; restart
	// kube-apiserver on SIGUSR1, one restart at a time.
	type restartResult struct {
		c   *child
		err error
	}
	var restartDone chan restartResult // non-nil while a restart runs
	for {
		select {
		case <-cp.interrupted:
			// A restart in progress notices cp.interrupted itself;
			// shutdown() stops whichever kube-apiserver is running.
			return nil
		case c := <-cp.childExited:
			return fmt.Errorf("%s exited unexpectedly: %v (see %s)", c.name, c.err, c.logPath)
		case t := <-cp.restartReq:
			if isClosed(cp.interrupted) { // both ready at once: select picks either
				return nil
			}
			if restartDone != nil {
				logf("received SIGUSR1 during a kube-apiserver restart, ignored")
				continue
			}
			restartDone = make(chan restartResult, 1)
			go func(old *child, done chan<- restartResult) {
				c, err := cp.restartAPIServer(old, cs, t)
				done <- restartResult{c, err}
			}(apiserver, restartDone)
		case r := <-restartDone:
			restartDone = nil
			if r.c != nil {
				apiserver = r.c
			}
			if errors.Is(r.err, errInterrupted) {
				return nil
			}
			if r.err != nil {
				return fmt.Errorf("restarting kube-apiserver: %w", r.err)
			}
		}
	}
}

// restartAPIServer stops the running kube-apiserver (SIGTERM, SIGKILL after
// apiserverGrace), starts it again with the same flags (same port; the data
// is in etcd, which keeps running in this process), waits for /readyz, then
// writes the number of completed restarts to <data-dir>/apiserver-restarts.
// requested is when SIGUSR1 arrived. It returns the new child once spawned,
// also with an error.
func (cp *controlPlane) restartAPIServer(old *child, cs kubernetes.Interface, requested time.Time) (*child, error) {
	n := cp.restarts + 1
	logf("restarting kube-apiserver (restart %d, pid %d)", n, old.cmd.Process.Pid)
	cp.mu.Lock()
	old.stopRequested = true // its exit is no "component died unexpectedly"
	cp.mu.Unlock()
	stopChild(old, apiserverGrace)
	select {
	case <-cp.interrupted:
		return nil, errInterrupted
	default:
	}
	if old.err != nil && !isSignalExit(old.err) {
		logf("kube-apiserver (pid %d) stopped in %.1fs: %v", old.cmd.Process.Pid, time.Since(requested).Seconds(), old.err)
	} else {
		logf("kube-apiserver (pid %d) stopped in %.1fs", old.cmd.Process.Pid, time.Since(requested).Seconds())
	}
	cp.removeChild(old)

	c, err := cp.spawn("kube-apiserver", cp.apiserverArgv)
	if err != nil {
		if isClosed(cp.interrupted) {
			return nil, errInterrupted
		}
		return nil, err
	}
	timeout := time.NewTimer(cp.opts.startupTimeout)
	defer timeout.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, _ := apiserverReady(ctx, cs)
		cancel()
		if ok {
			break
		}
		select {
		case <-cp.interrupted:
			return c, errInterrupted
		case <-c.done:
			// Reported by the run loop through childExited.
			return c, fmt.Errorf("kube-apiserver exited while restarting: %v (see %s)", c.err, c.logPath)
		case <-timeout.C:
			return c, fmt.Errorf("kube-apiserver not ready within %s after a restart (see %s)", cp.opts.startupTimeout, c.logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cp.restarts = n // only this goroutine runs while a restart is in progress
	if err := writeFileAtomic(cp.path(restartsFile), []byte(strconv.Itoa(n)+"\n")); err != nil {
		return c, err
	}
	logf("kube-apiserver restarted (%d) in %.1fs", n, time.Since(requested).Seconds())
	return c, nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// isSignalExit reports whether a process ended because of SIGTERM/SIGKILL
// (cmd.Wait's error), the expected outcome of stopping it.
func isSignalExit(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && (ws.Signal() == syscall.SIGTERM || ws.Signal() == syscall.SIGKILL)
}

func (cp *controlPlane) waitFor(ctx context.Context, what string, check func(context.Context) (bool, error)) error {
	var lastErr error
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ok, err := check(cctx)
		cancel()
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("waiting for %s: %v (last error: %v)", what, context.Cause(ctx), lastErr)
			}
			return fmt.Errorf("waiting for %s: %v", what, context.Cause(ctx))
		case c := <-cp.childExited:
			return fmt.Errorf("%s exited during startup: %v (see %s)", c.name, c.err, c.logPath)
		case <-cp.interrupted:
			return errInterrupted
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func prepareDataDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	case len(entries) > 0:
		if _, err := os.Stat(filepath.Join(dir, markerFile)); err != nil {
			return fmt.Errorf("refusing to wipe %s: it is not empty and was not created by controlplane (no %s)", dir, markerFile)
		}
		if pid := readPid(filepath.Join(dir, "controlplane.pid")); pid > 0 && pid != os.Getpid() && processRunning(pid) {
			return fmt.Errorf("%s is in use by a running controlplane (pid %d)", dir, pid)
		}
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, markerFile), []byte("data directory of bigip-operator e2e controlplane; wiped at every start\n"), 0o644)
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func processRunning(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(cmdline), "controlplane")
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// freePorts reserves n distinct free ports on 127.0.0.1 (all listeners are
// held open until every port is chosen, then released).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// child is a component running as a child process of the launcher.
type child struct {
	name          string
	cmd           *exec.Cmd
	logPath       string
	done          chan struct{} // closed when it has exited; err is set then
	err           error
	stopRequested bool // guarded by controlPlane.mu: its exit is expected
}

func (cp *controlPlane) spawn(name string, args []string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := cp.path("logs", name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = cp.opts.dataDir
	cmd.Env = append(os.Environ(),
		"CONTROLPLANE_PARENT_PID="+strconv.Itoa(os.Getpid()),
		"KWOK_WORKDIR="+cp.path("kwok"),
		"KUBECONFIG=",
	)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a terminal's Ctrl-C reaches only the launcher,
		// which then stops the components in order.
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.shutdownCalled {
		_ = logFile.Close()
		return nil, errors.New("shutting down")
	}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	cp.children = append(cp.children, c)
	go func() {
		c.err = cmd.Wait()
		_ = logFile.Close()
		close(c.done)
		cp.mu.Lock()
		expected := cp.shutdownCalled || c.stopRequested
		cp.mu.Unlock()
		if !expected {
			select {
			case cp.childExited <- c:
			default:
			}
		}
	}()
	logf("started %s (pid %d)", name, cmd.Process.Pid)
	return c, nil
}

// removeChild forgets a child that has exited (replaced by a restart).
func (cp *controlPlane) removeChild(old *child) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	for i, c := range cp.children {
		if c == old {
			cp.children = append(cp.children[:i], cp.children[i+1:]...)
			return
		}
	}
}

// shutdown stops the components in reverse dependency order: kwok, the
// scheduler and the controller manager first, then kube-apiserver, then etcd.
func (cp *controlPlane) shutdown() {
	cp.mu.Lock()
	cp.shutdownCalled = true
	children := append([]*child(nil), cp.children...)
	cp.mu.Unlock()

	if cp.ownsDataDir {
		_ = os.Remove(cp.path("ready"))
	}
	var first, last []*child
	for _, c := range children {
		if c.name == "kube-apiserver" {
			last = append(last, c)
		} else {
			first = append(first, c)
		}
	}
	stopChildren(first, componentGrace)
	stopChildren(last, apiserverGrace)
	if cp.etcd != nil {
		cp.etcd.Close()
	}
	if cp.ownsDataDir {
		_ = os.Remove(cp.path("controlplane.pid"))
	}
}

func stopChildren(cs []*child, grace time.Duration) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func(c *child) {
			defer wg.Done()
			stopChild(c, grace)
		}(c)
	}
	wg.Wait()
}

// stopChild sends SIGTERM, then SIGKILL after grace, and returns once the
// child has exited. Safe to call concurrently for the same child.
func stopChild(c *child, grace time.Duration) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		logf("%s did not stop within %s, killing it", c.name, grace)
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}
