package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode"
	"unicode/utf8"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Selection is one network a pod asks for: the NPWG network selection element, plus Plexus's
// extension "container", naming the container that is given the network's device resource
// (the webhook's default is the first container).
type Selection struct {
	nadv1.NetworkSelectionElement

	// Container names the container that gets the network's device resource ("" = default).
	Container string
}

// UnmarshalJSON reads a selection element of the JSON form, including "container".
func (s *Selection) UnmarshalJSON(b []byte) error {
	var ext struct {
		Container string `json:"container,omitempty"`
	}
	if err := json.Unmarshal(b, &ext); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &s.NetworkSelectionElement); err != nil {
		return err
	}
	s.Container = ext.Container
	return nil
}

// MarshalJSON writes the JSON form, with "container" when set.
func (s Selection) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(s.NetworkSelectionElement)
	if err != nil || s.Container == "" {
		return b, err
	}
	c, err := json.Marshal(s.Container)
	if err != nil {
		return nil, err
	}
	out := append(b[:len(b)-1:len(b)-1], []byte(`,"container":`)...)
	return append(append(out, c...), '}'), nil
}

// Key is "namespace/name", the NAD a selection refers to.
func (s *Selection) Key() string { return s.Namespace + "/" + s.Name }

// SelectionError says which element of a networks annotation is wrong, why, and how to write
// it instead.
type SelectionError struct {
	// Index is the element's position (0-based); -1 when the annotation as a whole is wrong.
	Index int
	// Element is the element as written (or a short form of it for JSON elements).
	Element string
	// Reason says what is wrong and how to fix it.
	Reason string
}

func (e *SelectionError) Error() string {
	if e.Index < 0 {
		return e.Reason
	}
	return fmt.Sprintf("network %d (%q): %s", e.Index+1, e.Element, e.Reason)
}

// SelectionErrors is every problem of one annotation, in element order.
type SelectionErrors []*SelectionError

func (es SelectionErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// ParseSelections parses the value of the k8s.v1.cni.cncf.io/networks annotation in either
// form Multus accepts:
//   - a comma-separated list of `name`, `namespace/name`, `name@interface` or
//     `namespace/name@interface`;
//   - a JSON list of selection elements (name, namespace, interface, ips, mac, default-route,
//     cni-args, bandwidth, portMappings, infiniband-guid, and Plexus's container).
//
// Elements without a namespace get podNamespace. An empty annotation selects nothing. The error,
// if any, is a SelectionErrors naming every bad element.
func ParseSelections(annotation, podNamespace string) ([]*Selection, error) {
	trimmed := strings.TrimSpace(annotation)
	if trimmed == "" {
		return nil, nil
	}
	var (
		sels []*Selection
		errs SelectionErrors
	)
	if strings.ContainsAny(trimmed, "[{\"") {
		sels, errs = parseJSON(trimmed)
	} else {
		sels, errs = parseList(trimmed)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	for _, s := range sels {
		if s.Namespace == "" {
			s.Namespace = podNamespace
		}
	}
	if errs := validateSelections(sels); len(errs) > 0 {
		return nil, errs
	}
	return sels, nil
}

// ParseDefaultNetwork parses the v1.multus-cni.io/default-network annotation: exactly one
// network, `name` or `namespace/name`, in either form.
func ParseDefaultNetwork(annotation, podNamespace string) (*Selection, error) {
	sels, err := ParseSelections(annotation, podNamespace)
	if err != nil {
		return nil, err
	}
	if len(sels) != 1 {
		return nil, SelectionErrors{{Index: -1, Reason: fmt.Sprintf(
			"%s must name exactly one network, found %d", DefaultNetworkAnnotation, len(sels))}}
	}
	return sels[0], nil
}

func parseList(annotation string) ([]*Selection, SelectionErrors) {
	var (
		sels []*Selection
		errs SelectionErrors
	)
	for i, item := range strings.Split(annotation, ",") {
		item = strings.TrimSpace(item)
		s, reason := parseListItem(item)
		if reason != "" {
			errs = append(errs, &SelectionError{Index: i, Element: item, Reason: reason})
			continue
		}
		sels = append(sels, s)
	}
	return sels, errs
}

// parseListItem reads `[namespace/]name[@interface]`; it returns a reason when it cannot.
func parseListItem(item string) (*Selection, string) {
	const form = "write <name>, <namespace>/<name>, <name>@<interface> or <namespace>/<name>@<interface>"
	if item == "" {
		return nil, "empty network name; remove the extra comma"
	}
	var s Selection
	rest := item
	if n := strings.Count(rest, "/"); n > 1 {
		return nil, "more than one \"/\"; " + form
	} else if n == 1 {
		s.Namespace, rest, _ = strings.Cut(rest, "/")
		s.Namespace = strings.TrimSpace(s.Namespace)
		if s.Namespace == "" {
			return nil, "empty namespace before \"/\"; " + form
		}
	}
	if n := strings.Count(rest, "@"); n > 1 {
		return nil, "more than one \"@\"; a network has one interface name: " + form
	} else if n == 1 {
		rest, s.InterfaceRequest, _ = strings.Cut(rest, "@")
		s.InterfaceRequest = strings.TrimSpace(s.InterfaceRequest)
		if s.InterfaceRequest == "" {
			return nil, "empty interface name after \"@\"; " + form
		}
	}
	s.Name = strings.TrimSpace(rest)
	if s.Name == "" {
		return nil, "empty network name; " + form
	}
	return &s, ""
}

func parseJSON(annotation string) ([]*Selection, SelectionErrors) {
	var raws []json.RawMessage
	if err := json.Unmarshal([]byte(annotation), &raws); err != nil {
		if strings.HasPrefix(annotation, "{") {
			return nil, SelectionErrors{{Index: -1, Reason: "the JSON form must be a list of networks: " +
				`wrap the object in [ ], e.g. [{"name":"net1"}]`}}
		}
		return nil, SelectionErrors{{Index: -1, Reason: fmt.Sprintf(
			"not a JSON list of networks (%v); write e.g. [{\"name\":\"net1\",\"interface\":\"net1\"}] or the comma form net1,ns2/net2@eth1", err)}}
	}
	var (
		sels []*Selection
		errs SelectionErrors
	)
	for i, raw := range raws {
		short := shorten(raw)
		if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
			errs = append(errs, &SelectionError{Index: i, Element: short, Reason: "not a JSON object; each network is an object like {\"name\":\"net1\"}"})
			continue
		}
		var s Selection
		if err := json.Unmarshal(raw, &s); err != nil {
			errs = append(errs, &SelectionError{Index: i, Element: short, Reason: describeJSONError(err)})
			continue
		}
		if s.Name == "" {
			errs = append(errs, &SelectionError{Index: i, Element: short, Reason: "missing \"name\": name the NetworkAttachmentDefinition to attach"})
			continue
		}
		sels = append(sels, &s)
	}
	return sels, errs
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("field %q must be a JSON %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	var parseErr *net.ParseError
	if errors.As(err, &parseErr) {
		return fmt.Sprintf("\"default-route\" has an invalid IP address %q", parseErr.Text)
	}
	return "invalid: " + err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "slice", "array":
		return "list"
	case "struct", "map", "ptr":
		return "object"
	case "int", "int32", "int64", "float64", "uint8":
		return "number"
	}
	return goKind
}

// validateSelections checks what each element asks for, and that no two elements ask for the
// same interface.
func validateSelections(sels []*Selection) SelectionErrors {
	var errs SelectionErrors
	ifaces := map[string]int{}
	for i, s := range sels {
		el := elementString(s)
		fail := func(format string, args ...any) {
			errs = append(errs, &SelectionError{Index: i, Element: el, Reason: fmt.Sprintf(format, args...)})
		}
		for _, msg := range validation.IsDNS1123Subdomain(s.Name) {
			fail("network name %q is not a valid object name: %s", s.Name, msg)
		}
		for _, msg := range validation.IsDNS1123Label(s.Namespace) {
			fail("namespace %q is not a valid namespace name: %s", s.Namespace, msg)
		}
		if s.InterfaceRequest != "" {
			if reason := invalidInterfaceName(s.InterfaceRequest); reason != "" {
				fail("interface name %q %s", s.InterfaceRequest, reason)
			} else if j, dup := ifaces[s.InterfaceRequest]; dup {
				fail("interface %q is already asked for by network %d (%q); give each network its own interface name", s.InterfaceRequest, j+1, elementString(sels[j]))
			} else {
				ifaces[s.InterfaceRequest] = i
			}
		}
		for _, ip := range s.IPRequest {
			if !validIPOrCIDR(ip) {
				fail("requested IP %q is not an IP address or CIDR (e.g. 10.1.1.11 or 10.1.1.11/24)", ip)
			}
		}
		if s.MacRequest != "" {
			if hw, err := net.ParseMAC(s.MacRequest); err != nil || len(hw) != 6 {
				fail("requested MAC %q is not a 48-bit MAC address (e.g. 02:00:00:00:00:01)", s.MacRequest)
			}
		}
		if s.InfinibandGUIDRequest != "" {
			if hw, err := net.ParseMAC(s.InfinibandGUIDRequest); err != nil || len(hw) != 8 {
				fail("requested infiniband-guid %q is not a 64-bit GUID (e.g. c2:11:22:33:44:55:66:77)", s.InfinibandGUIDRequest)
			}
		}
		if b := s.BandwidthRequest; b != nil && (b.IngressRate < 0 || b.IngressBurst < 0 || b.EgressRate < 0 || b.EgressBurst < 0) {
			fail("bandwidth rates and bursts must not be negative")
		}
		for _, pm := range s.PortMappingsRequest {
			if pm == nil {
				fail("portMappings has an empty entry")
				continue
			}
			if pm.ContainerPort < 1 || pm.ContainerPort > 65535 || pm.HostPort < 0 || pm.HostPort > 65535 {
				fail("port mapping %d->%d: ports must be within 1-65535", pm.HostPort, pm.ContainerPort)
			}
			switch strings.ToLower(pm.Protocol) {
			case "", "tcp", "udp", "sctp":
			default:
				fail("port mapping protocol %q must be tcp, udp or sctp", pm.Protocol)
			}
		}
		if s.Container != "" {
			for _, msg := range validation.IsDNS1123Label(s.Container) {
				fail("container %q is not a valid container name: %s", s.Container, msg)
			}
		}
	}
	return errs
}

// invalidInterfaceName applies the kernel's rules for a network device name (dev_valid_name):
// 1 to 15 bytes, not "." or "..", no "/", ":" or white space; and, since it travels in JSON
// annotations, printable UTF-8. It returns why a name fails, or "".
func invalidInterfaceName(name string) string {
	switch {
	case len(name) > 15:
		return fmt.Sprintf("is %d bytes long; Linux allows at most 15", len(name))
	case name == "." || name == "..":
		return "is not allowed by Linux"
	case strings.ContainsAny(name, "/: \t\n\r\v\f"):
		return "may not contain \"/\", \":\" or white space"
	case !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
		return "must be printable UTF-8 text"
	}
	return ""
}

func validIPOrCIDR(s string) bool {
	if net.ParseIP(s) != nil {
		return true
	}
	_, _, err := net.ParseCIDR(s)
	return err == nil
}

// elementString renders a selection in the comma form, for messages.
func elementString(s *Selection) string {
	out := s.Name
	if s.Namespace != "" {
		out = s.Namespace + "/" + out
	}
	if s.InterfaceRequest != "" {
		out += "@" + s.InterfaceRequest
	}
	return out
}

func shorten(raw json.RawMessage) string {
	const max = 80
	s := string(bytes.Join(bytes.Fields(raw), []byte(" ")))
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
