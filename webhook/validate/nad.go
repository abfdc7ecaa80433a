package validate

import (
	"encoding/json"
	"fmt"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/plexus-project/plexus/cni/network"
	"github.com/plexus-project/plexus/ipam/config"
	"github.com/plexus-project/plexus/webhook"
)

// ValidateNAD returns the problems of a NetworkAttachmentDefinition: its name, its CNI
// configuration, resourceName and nodeSelector (network.ValidateNAD), and every IPAM section
// plexus-ipam reads (types plexus-ipam and whereabouts): it must parse, name host paths only
// inside the node's Plexus directories and a valid node_name (config.ValidateHostPaths), and its
// inline ranges must be ones plexus-ipam accepts. Warnings are what plexus-ipam will ignore (a
// Whereabouts kubeconfig elsewhere), for the person applying the NAD.
func ValidateNAD(nad *nadv1.NetworkAttachmentDefinition) (errs field.ErrorList, warnings []string) {
	for _, msg := range validation.IsDNS1123Subdomain(nad.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), nad.Name, msg))
	}
	errs = append(errs, network.ValidateNAD(nad)...)
	if len(errs) > 0 {
		return errs, nil
	}
	list, err := network.ParseConfig(nad.Spec.Config, nad.Name)
	if err != nil { // network.ValidateNAD parsed it a moment ago
		return field.ErrorList{field.Invalid(field.NewPath("spec", "config"), field.OmitValueType{}, err.Error())}, nil
	}
	conflist := hasPlugins(nad.Spec.Config)
	for i, p := range list.Plugins {
		if !readsIPAM(p.Network.IPAM.Type) {
			continue
		}
		path := field.NewPath("spec", "config").Child("ipam")
		if conflist {
			path = field.NewPath("spec", "config").Child("plugins").Index(i).Child("ipam")
		}
		e, w := validateIPAM(list.Name, p.Bytes, path)
		errs, warnings = append(errs, e...), append(warnings, w...)
	}
	return errs, warnings
}

// validateIPAM checks one plugin's IPAM section that plexus-ipam reads. A section that does not
// parse is an error, never a reason to skip the checks.
func validateIPAM(networkName string, plugin []byte, path *field.Path) (field.ErrorList, []string) {
	var conf map[string]any
	if err := json.Unmarshal(plugin, &conf); err != nil {
		return field.ErrorList{field.Invalid(path, field.OmitValueType{}, "the plugin configuration does not parse: "+err.Error())}, nil
	}
	var sec struct {
		IPAM json.RawMessage `json:"ipam"`
	}
	var ipam config.IPAM
	if err := json.Unmarshal(plugin, &sec); err != nil {
		return field.ErrorList{field.Invalid(path, field.OmitValueType{}, "does not parse: "+err.Error())}, nil
	}
	if err := json.Unmarshal(sec.IPAM, &ipam); err != nil {
		return field.ErrorList{field.Invalid(path, string(sec.IPAM), "does not parse as a plexus-ipam section: "+err.Error())}, nil
	}
	errs, warnings := config.ValidateHostPaths(&ipam, path)
	if len(errs) > 0 || (ipam.Range == "" && len(ipam.IPRanges) == 0) {
		return errs, warnings // ranges only in a flat file on the nodes: plexus-ipam checks them there
	}
	conf["name"] = networkName
	stdin, err := json.Marshal(conf)
	if err != nil {
		return field.ErrorList{field.Invalid(path, string(sec.IPAM), err.Error())}, warnings
	}
	if _, err := config.Parse(stdin, nil, ""); err != nil {
		errs = append(errs, field.Invalid(path, string(sec.IPAM), err.Error()))
	}
	return errs, warnings
}

// hasPlugins reports whether a spec.config is a conflist (has "plugins"), for field paths.
func hasPlugins(cfg string) bool {
	var raw map[string]json.RawMessage
	_ = json.Unmarshal([]byte(cfg), &raw)
	_, ok := raw["plugins"]
	return ok
}

// NAD refuses an invalid NetworkAttachmentDefinition, listing every problem; warnings are for
// the person applying it.
func NAD(nad *nadv1.NetworkAttachmentDefinition) (warnings []string, err error) {
	errs, warnings := ValidateNAD(nad)
	if len(errs) == 0 {
		return warnings, nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return warnings, webhook.Refuse(webhook.ReasonInvalidNetwork, "NetworkAttachmentDefinition %s/%s is invalid: %s",
		nad.Namespace, nad.Name, strings.Join(msgs, "; "))
}

// Delete refuses to delete a NAD that running pods use, unless it allows it.
func (v *Validator) Delete(nad *nadv1.NetworkAttachmentDefinition) error {
	if nad.Annotations[AllowDeleteInUseAnnotation] == "true" {
		return nil
	}
	key := nad.Namespace + "/" + nad.Name
	pods, total, err := v.lookup.PodsUsing(key, MaxListedPods)
	if err != nil {
		return fmt.Errorf("finding the pods that use NetworkAttachmentDefinition %s: %w", key, err)
	}
	if total == 0 {
		return nil
	}
	list := strings.Join(pods, ", ")
	if total > len(pods) {
		list += fmt.Sprintf(" and %d more", total-len(pods))
	}
	noun := "pods"
	if total == 1 {
		noun = "pod"
	}
	return webhook.Refuse(webhook.ReasonInUse,
		"NetworkAttachmentDefinition %s is in use by %d running %s (%s); delete them first, or annotate the NAD %s=\"true\" to delete it anyway",
		key, total, noun, list, AllowDeleteInUseAnnotation)
}
