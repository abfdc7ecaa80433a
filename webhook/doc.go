// Package webhook is Plexus's admission webhook: a mutating Injector that turns the networks a
// pod selects into the extended resources (SR-IOV VFs) it needs, and a Validator that refuses
// broken NetworkAttachmentDefinitions and pod network annotations with a message a person can
// act on.
package webhook
