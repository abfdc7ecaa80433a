// Package reconciler reclaims what plexus-ipam leaked and keeps pool counts current. It runs in
// plexus-controller, on the elected leader only, with no cron:
//
//   - BlockReconciler visits every IPBlock at least every Options.Interval (15 s by default) and
//     frees an allocation when its pod is gone, or when the pod of that name now has another UID
//     (the pod was re-created). It never frees the address of a live pod: the cache is only a
//     hint, and every decision to free is confirmed by a live read of the pod from the API
//     server, compared by UID. A sticky reservation is kept until it expires, and longer while a
//     pod of its name exists. Empty blocks are deleted (a crashed node's blocks empty out as the
//     pods of the node are deleted), conditionally on the resourceVersion that showed them empty.
//   - PoolReconciler writes each IPPool's size, used and free counts into its status.
package reconciler
