package coordinator

import (
	"encoding/json"
	"testing"

	"github.com/trustbound/trustbound/token"
)

// akvNonceBinds compares a request nonce with each nonce the token
// carries, and with nothing when either side has none.
func TestAKVNonceBinds(t *testing.T) {
	rt := func(doc string) token.Runtime { return token.Runtime{Doc: json.RawMessage(doc)} }
	for _, c := range []struct {
		name  string
		nonce string
		tc    token.Claims
		ok    bool
	}{
		{"no request nonce", "", token.Claims{Nonce: "n1"}, true},
		{"token without a nonce", "n1", token.Claims{Runtime: rt(`{"keys":[]}`)}, true},
		{"nonce claim equal", "n1", token.Claims{Nonce: "n1"}, true},
		{"nonce claim differs", "n2", token.Claims{Nonce: "n1"}, false},
		{"runtime nonce only, equal", "n1", token.Claims{Runtime: rt(`{"nonce":"n1"}`)}, true},
		{"runtime nonce differs", "n1", token.Claims{Nonce: "n1", Runtime: rt(`{"nonce":"n2"}`)}, false},
		{"prefix", "n", token.Claims{Nonce: "n1"}, false},
		{"runtime nonce not a string", "n1", token.Claims{Runtime: rt(`{"nonce":1}`)}, false},
		{"runtime not an object", "n1", token.Claims{Nonce: "n1", Runtime: rt(`["n1"]`)}, false},
		{"runtime nonce null", "n1", token.Claims{Nonce: "n1", Runtime: rt(`{"nonce":null}`)}, false},
		{"no request nonce, odd runtime", "", token.Claims{Runtime: rt(`{"nonce":1}`)}, true},
	} {
		if err := akvNonceBinds(c.nonce, &c.tc); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}
