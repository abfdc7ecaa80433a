// Package testing has an in-memory nadcache.Lookup for unit tests of the admission concerns.
package testing

import (
	"sort"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"

	"github.com/plexus-project/plexus/webhook/nadcache"
)

// Lookup is a nadcache.Lookup over fixed NADs and pod usages.
type Lookup struct {
	NADs map[string]*nadcache.NAD
	// Users maps a NAD key to the running pods ("namespace/name") using it.
	Users map[string][]string
}

var _ nadcache.Lookup = (*Lookup)(nil)

// New parses nads the way the real cache does.
func New(nads ...*nadv1.NetworkAttachmentDefinition) *Lookup {
	l := &Lookup{NADs: map[string]*nadcache.NAD{}, Users: map[string][]string{}}
	for _, n := range nads {
		e := nadcache.Parse(n)
		l.NADs[e.Key()] = e
	}
	return l
}

// NAD implements nadcache.Lookup.
func (l *Lookup) NAD(namespace, name string) (*nadcache.NAD, error) {
	if n, ok := l.NADs[namespace+"/"+name]; ok {
		return n, nil
	}
	return nil, &nadcache.NotFoundError{Namespace: namespace, Name: name}
}

// PodsUsing implements nadcache.Lookup.
func (l *Lookup) PodsUsing(key string, limit int) ([]string, int, error) {
	pods := append([]string(nil), l.Users[key]...)
	sort.Strings(pods)
	total := len(pods)
	if len(pods) > limit {
		pods = pods[:limit]
	}
	return pods, total, nil
}
