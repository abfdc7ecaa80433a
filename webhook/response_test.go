package webhook

import (
	"errors"
	"fmt"
	"testing"

	"gomodules.xyz/jsonpatch/v2"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func TestResponses(t *testing.T) {
	cases := []struct {
		name    string
		resp    func() (allowed bool, reason string, code int32, patches int)
		allowed bool
		reason  string
		code    int32
		patches int
	}{
		{"allowed", wrap(Allowed(ReasonNoNetworks)), true, ReasonNoNetworks, 200, 0},
		{"denied", wrap(Denied(ReasonInUse, "in use")), false, ReasonInUse, 403, 0},
		{"patched", wrap(Patched(ReasonInjected, []jsonpatch.Operation{{Operation: "add", Path: "/a", Value: 1}})), true, ReasonInjected, 200, 1},
		{"refusal wrapped", wrap(FromError(fmt.Errorf("pod x: %w", Refuse(ReasonUnknownNetwork, "network %d missing", 2)))), false, ReasonUnknownNetwork, 403, 0},
		{"other error denies, never an HTTP error", wrap(FromError(errors.New("cache broke"))), false, ReasonInternalError, 403, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			allowed, reason, code, patches := tc.resp()
			if allowed != tc.allowed || reason != tc.reason || code != tc.code || patches != tc.patches {
				t.Errorf("got %v %s %d %d, want %v %s %d %d", allowed, reason, code, patches, tc.allowed, tc.reason, tc.code, tc.patches)
			}
		})
	}
	if msg := FromError(fmt.Errorf("ctx: %w", Refuse(ReasonBadAnnotation, "fix it"))).Result.Message; msg != "fix it" {
		t.Errorf("message = %q: the refusal's own message goes to the user", msg)
	}
}

func wrap(r admission.Response) func() (bool, string, int32, int) {
	return func() (bool, string, int32, int) {
		return r.Allowed, ReasonOf(r), r.Result.Code, len(r.Patches)
	}
}
