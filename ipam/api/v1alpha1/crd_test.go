package v1alpha1_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// TestCRDsAreAccepted runs the API server's own validation of a CustomResourceDefinition (CEL
// rules compile, their estimated cost fits the budget) over the generated CRDs, so a rule too
// costly fails here rather than when an API server refuses to install the chart.
func TestCRDsAreAccepted(t *testing.T) {
	s := runtime.NewScheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsinternal.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ipam.plexus.io_ipblocks.yaml", "ipam.plexus.io_ippools.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "charts", "plexus", "crds", name))
		if err != nil {
			t.Fatal(err)
		}
		var v1 apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(b, &v1); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		v1.Status.StoredVersions = []string{"v1alpha1"} // what an installed CRD has
		var crd apiextensionsinternal.CustomResourceDefinition
		if err := s.Convert(&v1, &crd, nil); err != nil {
			t.Fatal(err)
		}
		if errs := validation.ValidateCustomResourceDefinition(context.Background(), &crd); len(errs) > 0 {
			t.Errorf("%s would be refused by the API server: %v", name, errs.ToAggregate())
		}
	}
}
