package keybroker

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"testing"
)

func TestRSAAESWrap(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	key := bytes.Repeat([]byte{7}, 32)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384} {
		w, err := WrapRSAAES(&priv.PublicKey, h, key)
		if err != nil {
			t.Fatal(err)
		}
		// RSA-OAEP(AES key) then KWP: modulus size + key + 8 bytes of integrity.
		if len(w) != 256+len(key)+8 {
			t.Errorf("%v: %d bytes", h, len(w))
		}
		got, err := UnwrapRSAAES(priv, h, w)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("%v: %x %v", h, got, err)
		}
		if _, err := UnwrapRSAAES(other, h, w); err == nil {
			t.Errorf("%v: unwrapped with another RSA key", h)
		}
		w[len(w)-1] ^= 1
		if _, err := UnwrapRSAAES(priv, h, w); err == nil {
			t.Errorf("%v: a tampered wrap opened", h)
		}
	}
	if _, err := WrapRSAAES(&priv.PublicKey, crypto.SHA256, []byte("short")); err == nil {
		t.Error("a key under 16 bytes was wrapped")
	}
}
