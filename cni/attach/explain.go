package attach

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

func (e *attachError) Error() string {
	where := fmt.Sprintf("network %s (plugin %s, interface %s)", e.d.att.Network, e.d.types, e.d.att.IfName)
	if e.d.att.Default {
		where = fmt.Sprintf("default network %s (plugin %s, interface %s)", e.d.att.Network, e.d.types, e.d.att.IfName)
	}
	return where + ": " + e.cause
}

func (e *attachError) Unwrap() error { return e.err }

// explanation turns a plugin's raw error text into words a person can act on.
type explanation struct {
	re     *regexp.Regexp
	reason string
	say    func(m []string, node, bins string) string
}

var explanations = []explanation{
	{regexp.MustCompile(`failed to (?:lookup|find) master "?([^":]+)"?`), "master-not-found", func(m []string, node, _ string) string {
		return fmt.Sprintf("master interface %s not found on node %s: create it there, or fix \"master\" in the NetworkAttachmentDefinition", m[1], node)
	}},
	{regexp.MustCompile(`failed to find plugin "([^"]+)" in path`), "plugin-not-found", func(m []string, node, bins string) string {
		return fmt.Sprintf("CNI plugin %q is not installed on node %s (searched %s): install it there, or fix \"type\" in the NetworkAttachmentDefinition", m[1], node, bins)
	}},
	{regexp.MustCompile(`(?i)(no (?:IP )?addresses? (?:available|left|free)|no free address|range is full|exhausted)`), "no-address", func(_ []string, _, _ string) string {
		return "no free address in the network's IP range: widen the range or free addresses"
	}},
	{regexp.MustCompile(`(?i)(?:container veth name|interface) "?([^" ]+)"? (?:provided )?already exists`), "interface-exists", func(m []string, _, _ string) string {
		return fmt.Sprintf("interface %s already exists in the pod: give each network its own interface name", m[1])
	}},
	{regexp.MustCompile(`(?i)(?:incompatible|unsupported) CNI version|plugin does not support (?:config )?version`), "cni-version", func(_ []string, node, _ string) string {
		return fmt.Sprintf("the plugin on node %s does not support the config's cniVersion: set a cniVersion it supports in the NetworkAttachmentDefinition", node)
	}},
}

// explain gives the actionable words and the reason label for a raw plugin error.
func (a *Attacher) explain(raw string) (cause, reason string) {
	return a.explainIn(nil, raw)
}

// explainIn is explain knowing the delegate's config: a bare "Link not found" from a plugin
// whose config names a master is about that master (macvlan, ipvlan and vlan say no more).
func (a *Attacher) explainIn(list *libcni.NetworkConfigList, raw string) (cause, reason string) {
	bins := strings.Join(a.opts.BinDirs, ":")
	for _, x := range explanations {
		if m := x.re.FindStringSubmatch(raw); m != nil {
			return x.say(m, a.opts.NodeName, bins) + " (plugin said: " + raw + ")", x.reason
		}
	}
	if master := masterOf(list); master != "" && strings.Contains(raw, "Link not found") {
		return fmt.Sprintf("master interface %s not found on node %s: create it there, or fix \"master\" in the NetworkAttachmentDefinition (plugin said: %s)", master, a.opts.NodeName, raw), "master-not-found"
	}
	return raw, "plugin-error"
}

// masterOf is the "master" of the first plugin of list that has one.
func masterOf(list *libcni.NetworkConfigList) string {
	if list == nil {
		return ""
	}
	for _, p := range list.Plugins {
		var c struct {
			Master string `json:"master"`
		}
		if json.Unmarshal(p.Bytes, &c) == nil && c.Master != "" {
			return c.Master
		}
	}
	return ""
}

// describe fills in the words of every attachError inside err.
func (a *Attacher) describe(err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var ae *attachError
		if errors.As(e, &ae) && ae.cause == "" {
			ae.cause, ae.reason = a.explainIn(ae.d.list, ae.err.Error())
		}
	}
	return err
}

// reasonOf is the metrics label of a failure.
func reasonOf(err error) string {
	var ae *attachError
	if errors.As(err, &ae) && ae.reason != "" {
		return ae.reason
	}
	var ce *types.Error
	if errors.As(err, &ce) {
		switch ce.Code {
		case types.ErrInvalidNetworkConfig, types.ErrDecodingFailure, types.ErrInvalidEnvironmentVariables:
			return "invalid"
		case types.ErrTryAgainLater:
			return "unavailable"
		}
	}
	if strings.Contains(err.Error(), "network-status") {
		return "status-write"
	}
	return "internal"
}

// asCNIError is err as the CNI error the runtime gets: a CNI error as it is, anything else
// with its whole text as the message.
func asCNIError(err error) error {
	var ce *types.Error
	if errors.As(err, &ce) && ce == err {
		return ce
	}
	code := types.ErrInternal
	var ae *attachError
	if errors.As(err, &ae) {
		if errors.As(ae.err, &ce) && ce.Code != 0 {
			code = ce.Code
		}
	}
	return types.NewError(code, err.Error(), "")
}
