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
	"github.com/plexus-project/plexus/webhook/nadcache"
)

// ValidateNAD returns the problems of a NetworkAttachmentDefinition: its name, its CNI
// configuration, resourceName and nodeSelector (network.ValidateNAD), and its IPAM section when
// plexus-ipam reads it.
func ValidateNAD(nad *nadv1.NetworkAttachmentDefinition) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(nad.Name) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), nad.Name, msg))
	}
	errs = append(errs, network.ValidateNAD(nad)...)
	if len(errs) > 0 {
		return errs
	}
	entry := nadcache.Parse(nad)
	if plugin, ok := rangedIPAM(entry); ok {
		var conf map[string]any
		if err := json.Unmarshal(plugin, &conf); err == nil {
			conf["name"] = entry.Network.Config.Name
			stdin, _ := json.Marshal(conf)
			if _, err := config.Parse(stdin, nil, ""); err != nil {
				errs = append(errs, field.Invalid(field.NewPath("spec", "config").Child("ipam"), string(entry.Network.IPAM.Raw), err.Error()))
			}
		}
	}
	return errs
}

// NAD refuses an invalid NetworkAttachmentDefinition, listing every problem.
func NAD(nad *nadv1.NetworkAttachmentDefinition) error {
	errs := ValidateNAD(nad)
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return webhook.Refuse(webhook.ReasonInvalidNetwork, "NetworkAttachmentDefinition %s/%s is invalid: %s",
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
