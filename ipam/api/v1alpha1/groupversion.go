package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the group and version of every type in this package.
var GroupVersion = schema.GroupVersion{Group: "ipam.plexus.io", Version: "v1alpha1"}

// AddToScheme registers IPPool and IPBlock (and their lists) with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &IPPool{}, &IPPoolList{}, &IPBlock{}, &IPBlockList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Label keys put on IPBlocks so they can be listed per network and per node.
const (
	LabelNetwork = "ipam.plexus.io/network"
	LabelNode    = "ipam.plexus.io/node"
)
