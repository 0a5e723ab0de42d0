package agent

import (
	"context"

	"github.com/trustbound/trustbound/api"
)

// AuditEachLimit is Client.AuditEach with pages of limit records, for the
// tests of package agent_test.
func AuditEachLimit(ctx context.Context, c *Client, o Owner, limit int, each func(api.AuditRecord) error) error {
	return c.auditEach(ctx, o, limit, each)
}
