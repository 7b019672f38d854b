package main

import (
	_ "embed"
	"strings"

	"github.com/spf13/pflag"

	heartbeat "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	kwokconfig "sigs.k8s.io/kwok/pkg/config"
	kwokcmd "sigs.k8s.io/kwok/pkg/kwok/cmd"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	kwoksignals "sigs.k8s.io/kwok/pkg/utils/signals"
)

// nodeInitializeStage is kwok's "fast" node-initialize stage, extended to take
// the InternalIP from the e2e.bigip-operator.dev/internal-ip annotation.
//
//go:embed stages/node-initialize.yaml
var nodeInitializeStage string

// kwokStages returns the stage configuration handed to kwok with --config:
// the same set kwokctl uses by default (fast node/pod lifecycle, node
// heartbeat through leases).
func kwokStages() string {
	return strings.Join([]string{
		nodeInitializeStage,
		heartbeat.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady,
		podfast.DefaultPodComplete,
		podfast.DefaultPodDelete,
	}, "\n---\n")
}

// runKwok runs kwok's own root command (what sigs.k8s.io/kwok/cmd/kwok does)
// with args. It is used in the "kwok" child process.
func runKwok(args []string) int {
	// Kubernetes packages linked into this binary register flags such as
	// --version in pflag.CommandLine, which cobra merges into every root
	// command; kwok's command defines its own. Start from a clean set.
	pflag.CommandLine = pflag.NewFlagSet("kwok", pflag.ExitOnError)

	flagset := pflag.NewFlagSet("global", pflag.ContinueOnError)
	flagset.ParseErrorsAllowlist.UnknownFlags = true
	flagset.Usage = func() {}

	ctx := kwoksignals.SetupSignalContext()
	ctx, logger := kwoklog.InitFlags(ctx, flagset)

	// kwok's config.InitFlags parses os.Args[1:]; the "kwok" sub-command word
	// in front is a positional argument and is ignored there.
	ctx, err := kwokconfig.InitFlags(ctx, flagset)
	if err != nil {
		logger.Error("Init config flags", "err", err)
		return 1
	}
	command := kwokcmd.NewCommand(ctx)
	command.PersistentFlags().AddFlagSet(flagset)
	command.SetArgs(args)
	if err := command.ExecuteContext(ctx); err != nil {
		logger.Error("Execute exit", "err", err)
		return 1
	}
	return 0
}
