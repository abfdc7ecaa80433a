package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/plexus-project/plexus/ipam/allocator"
)

// Client is a plugin's connection to the agent. It offers the allocator's methods, so the plugin
// allocates the same way whether the agent is there or not. It is not safe for concurrent use
// (a plugin asks one thing at a time).
type Client struct {
	conn net.Conn
	dec  *json.Decoder
	enc  *json.Encoder
	node string
}

// Dial connects to the agent of dir (the plugin's lock_dir), for node ("" for the agent's own).
// An error means no agent answers: the plugin allocates directly.
func Dial(ctx context.Context, dir, node string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", filepath.Join(dir, SocketName))
	if err != nil {
		return nil, err
	}
	return &Client{conn: conn, dec: json.NewDecoder(bufio.NewReader(conn)), enc: json.NewEncoder(conn), node: node}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Allocate asks the agent for an address (see allocator.Allocator.Allocate).
func (c *Client) Allocate(ctx context.Context, pool allocator.Pool, owner allocator.Owner, requested netip.Addr) (netip.Addr, error) {
	req := &Request{Op: OpAllocate, Pool: SpecOf(pool), Owner: owner}
	if requested.IsValid() {
		req.Requested = requested.String()
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return netip.Addr{}, err
	}
	return parseAddr(resp)
}

// Release asks the agent to free owner's addresses (see allocator.Allocator.Release).
func (c *Client) Release(ctx context.Context, network string, owner allocator.Owner, stickyTTL time.Duration) error {
	_, err := c.do(ctx, &Request{Op: OpRelease, Network: network, Owner: owner, StickyTTL: stickyTTL})
	return err
}

// Find asks the agent for owner's address in pool (see allocator.Allocator.Find).
func (c *Client) Find(ctx context.Context, pool allocator.Pool, owner allocator.Owner) (netip.Addr, bool, error) {
	resp, err := c.do(ctx, &Request{Op: OpFind, Pool: SpecOf(pool), Owner: owner})
	if err != nil || !resp.Found {
		return netip.Addr{}, false, err
	}
	addr, err := parseAddr(resp)
	return addr, err == nil, err
}

// Ping checks that the agent's API server answers (see allocator.Allocator.Ping).
func (c *Client) Ping(ctx context.Context, network string) error {
	_, err := c.do(ctx, &Request{Op: OpPing, Network: network})
	return err
}

// do sends req and reads the answer, within ctx. An agent that does not answer is reported as
// unavailable (CNI's "try again later"): whether it acted is unknown, and ADD and DEL are
// idempotent.
func (c *Client) do(ctx context.Context, req *Request) (*Response, error) {
	req.Node = c.node
	if d, ok := ctx.Deadline(); ok {
		req.Timeout = time.Until(d)
		c.conn.SetDeadline(d)
	}
	var resp Response
	if err := c.enc.Encode(req); err != nil {
		return nil, fmt.Errorf("asking the IPAM agent at %s: %w: %w", c.conn.RemoteAddr(), allocator.ErrUnavailable, err)
	}
	if err := c.dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("waiting for the IPAM agent at %s: %w: %w", c.conn.RemoteAddr(), allocator.ErrUnavailable, err)
	}
	if resp.Error == "" {
		return &resp, nil
	}
	if resp.Retryable {
		return nil, fmt.Errorf("%w: %s", allocator.ErrUnavailable, resp.Error)
	}
	return nil, errors.New(resp.Error)
}

func parseAddr(resp *Response) (netip.Addr, error) {
	addr, err := netip.ParseAddr(resp.Addr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("the IPAM agent answered %q: %w", resp.Addr, err)
	}
	return addr, nil
}
