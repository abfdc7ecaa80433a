package cluster

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// Audit logging: kube-apiserver writes one JSON line per request of the audited users, at the
// Metadata level (who, verb, resource, object, response code; no bodies), so a benchmark can
// count the requests a component's identity made. Other users' requests are not logged.

// auditPolicy is the subset of audit.k8s.io/v1 Policy the sandbox writes.
type auditPolicy struct {
	APIVersion  string            `json:"apiVersion"`
	Kind        string            `json:"kind"`
	OmitStages  []string          `json:"omitStages,omitempty"`
	Rules       []auditPolicyRule `json:"rules"`
	OmitManaged bool              `json:"omitManagedFields,omitempty"`
}

type auditPolicyRule struct {
	Level string   `json:"level"`
	Users []string `json:"users,omitempty"`
}

// renderAuditPolicy is the audit policy that logs every request of users at the Metadata
// level, once when the response completes (RequestReceived is omitted; a watch also logs
// ResponseStarted), and nothing else.
func renderAuditPolicy(users []string) ([]byte, error) {
	if len(users) == 0 {
		return nil, fmt.Errorf("an audit policy needs at least one user")
	}
	for _, u := range users {
		if strings.TrimSpace(u) == "" || strings.ContainsAny(u, "\n\"") {
			return nil, fmt.Errorf("audit user %q: give a user name as the API server knows it, e.g. system:serviceaccount:kube-system:plexus-daemon", u)
		}
	}
	return yaml.Marshal(auditPolicy{
		APIVersion:  "audit.k8s.io/v1",
		Kind:        "Policy",
		OmitStages:  []string{"RequestReceived"},
		OmitManaged: true,
		Rules: []auditPolicyRule{
			{Level: "Metadata", Users: users},
			{Level: "None"},
		},
	})
}

// auditArgs writes the audit policy for users under dir and returns kube-apiserver's flags
// for it: the log goes to logPath, synchronously (mode blocking), so a request is in the file
// once its response was sent.
func auditArgs(dir, logPath string, users []string) ([]string, error) {
	policy, err := renderAuditPolicy(users)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(path, policy, 0o600); err != nil {
		return nil, err
	}
	// A log of an earlier run in the same directory would be counted with this one's.
	if err := os.Remove(logPath); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	return []string{
		"--audit-policy-file=" + path,
		"--audit-log-path=" + logPath,
		"--audit-log-format=json",
		"--audit-log-mode=blocking",
		"--audit-log-maxsize=0",
	}, nil
}

// AuditLogPath is the API server's audit log (written when Options.AuditUsers is set).
func (c *Cluster) AuditLogPath() string { return filepath.Join(c.dir, "logs", "audit.log") }

// AuditEvent is one request of the audit log, as the API server recorded it.
type AuditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// Resource is the event's resource with its subresource ("pods/status"), or its URI when
// it names none (discovery, /healthz).
func (e AuditEvent) Resource() string {
	if e.ObjectRef == nil {
		return e.RequestURI
	}
	if e.ObjectRef.Subresource != "" {
		return e.ObjectRef.Resource + "/" + e.ObjectRef.Subresource
	}
	return e.ObjectRef.Resource
}

// ReadAudit returns the requests of user in the audit log r, one event per request (its
// ResponseComplete stage, or the ResponseStarted one of a watch still open), in log order.
func ReadAudit(r io.Reader, user string) ([]AuditEvent, error) {
	var events []AuditEvent
	index := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("audit log line %d: %w", line, err)
		}
		if e.User.Username != user {
			continue
		}
		if i, seen := index[e.AuditID]; seen {
			events[i] = e // the later stage of the same request
			continue
		}
		index[e.AuditID] = len(events)
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the audit log: %w", err)
	}
	return events, nil
}
