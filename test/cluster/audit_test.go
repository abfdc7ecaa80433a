package cluster

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestRenderAuditPolicy(t *testing.T) {
	const daemon = "system:serviceaccount:kube-system:plexus-daemon"
	tests := []struct {
		name    string
		users   []string
		want    []auditPolicyRule
		wantErr string
	}{
		{name: "one user", users: []string{daemon}, want: []auditPolicyRule{
			{Level: "Metadata", Users: []string{daemon}}, {Level: "None"}}},
		{name: "two users", users: []string{daemon, "plexus-ipam"}, want: []auditPolicyRule{
			{Level: "Metadata", Users: []string{daemon, "plexus-ipam"}}, {Level: "None"}}},
		{name: "no user", wantErr: "at least one user"},
		{name: "empty user", users: []string{" "}, wantErr: "give a user name"},
		{name: "user breaking the YAML", users: []string{"a\"\nb"}, wantErr: "give a user name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := renderAuditPolicy(tt.users)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Read back as the API server reads it (strict: an unknown field is an error).
			var p auditPolicy
			if err := yaml.UnmarshalStrict(b, &p); err != nil {
				t.Fatalf("%v:\n%s", err, b)
			}
			if p.APIVersion != "audit.k8s.io/v1" || p.Kind != "Policy" {
				t.Errorf("policy is %s %s, want audit.k8s.io/v1 Policy", p.APIVersion, p.Kind)
			}
			if !reflect.DeepEqual(p.OmitStages, []string{"RequestReceived"}) {
				t.Errorf("omitStages %v: each request would be logged twice", p.OmitStages)
			}
			if !reflect.DeepEqual(p.Rules, tt.want) {
				t.Errorf("rules %+v, want %+v", p.Rules, tt.want)
			}
		})
	}
}

func TestAuditArgs(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(logPath, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args, err := auditArgs(dir, logPath, []string{"u"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--audit-policy-file=" + filepath.Join(dir, "audit-policy.yaml"), "--audit-log-path=" + logPath,
		"--audit-log-format=json", "--audit-log-mode=blocking", "--audit-log-maxsize=0"}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("args %v, want %v", args, want)
	}
	if _, err := os.Stat(logPath); !os.IsNotExist(err) {
		t.Errorf("the earlier run's audit log is still there (%v): its requests would be counted", err)
	}
}

func TestReadAudit(t *testing.T) {
	const log = `{"kind":"Event","auditID":"a1","stage":"ResponseComplete","verb":"list","requestURI":"/api/v1/pods?fieldSelector=spec.nodeName%3Dn1","user":{"username":"d"},"objectRef":{"resource":"pods","apiVersion":"v1"},"responseStatus":{"code":200}}
{"kind":"Event","auditID":"a2","stage":"ResponseStarted","verb":"watch","requestURI":"/api/v1/pods?watch=true","user":{"username":"d"},"objectRef":{"resource":"pods"},"responseStatus":{"code":200}}
{"kind":"Event","auditID":"o1","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/nodes/n1","user":{"username":"other"},"objectRef":{"resource":"nodes","name":"n1"}}

{"kind":"Event","auditID":"a3","stage":"ResponseComplete","verb":"patch","requestURI":"/api/v1/namespaces/default/pods/p/status","user":{"username":"d"},"objectRef":{"resource":"pods","subresource":"status","namespace":"default","name":"p"},"responseStatus":{"code":200}}
{"kind":"Event","auditID":"a2","stage":"ResponseComplete","verb":"watch","requestURI":"/api/v1/pods?watch=true","user":{"username":"d"},"objectRef":{"resource":"pods"},"responseStatus":{"code":200}}
{"kind":"Event","auditID":"a4","stage":"ResponseComplete","verb":"get","requestURI":"/api","user":{"username":"d"}}
`
	events, err := ReadAudit(strings.NewReader(log), "d")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		got = append(got, e.Verb+" "+e.Resource()+" "+e.Stage)
	}
	want := []string{"list pods ResponseComplete", "watch pods ResponseComplete", "patch pods/status ResponseComplete", "get /api ResponseComplete"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if _, err := ReadAudit(strings.NewReader("not json\n"), "d"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a bad line gave %v, want an error naming line 1", err)
	}
}
