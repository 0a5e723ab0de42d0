package identity

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// workloadCert issues a TLS certificate from ca for a fresh key held by the
// "workload" (here, the test).
func workloadCert(t *testing.T, ca *CA, workload, dnsName string) tls.Certificate {
	t.Helper()
	key := p256(t)
	req := workloadReq(key.Public())
	req.Workload = workload
	req.DNSNames = []string{dnsName}
	der, err := ca.IssueWorkload(req)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: parse(t, der)}
}

func wantPeer(id string, got func(tls.ConnectionState) (string, error)) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		peer, err := got(cs)
		if err != nil {
			return err
		}
		if peer != id {
			return fmt.Errorf("peer is %s, want %s", peer, id)
		}
		return nil
	}
}

// serverConfig requires a client certificate chaining to roots (crypto/tls
// verifies it) and then checks the client's SPIFFE ID.
func serverConfig(cert tls.Certificate, roots *x509.CertPool, at time.Time, clientID string) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
		Time:         func() time.Time { return at },
		VerifyConnection: wantPeer(clientID, func(cs tls.ConnectionState) (string, error) {
			id, err := SPIFFEIDOf(cs.PeerCertificates[0])
			if err != nil {
				return "", err
			}
			return id.String(), nil
		}),
	}
}

// clientConfigs are the two ways a workload can check a server: by DNS name
// through crypto/tls, then the SPIFFE ID; or, as SPIFFE peers usually do,
// by SPIFFE ID alone through VerifySVID.
func clientConfigs(cert tls.Certificate, roots *x509.CertPool, at time.Time, serverID, serverName string) map[string]*tls.Config {
	bySVID := func(cs tls.ConnectionState) (string, error) {
		id, err := VerifySVID(cs.PeerCertificates, VerifyOptions{Roots: roots, Now: at, Usage: x509.ExtKeyUsageServerAuth})
		if err != nil {
			return "", err
		}
		return id.String(), nil
	}
	return map[string]*tls.Config{
		"dns name": {
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			RootCAs:      roots,
			ServerName:   serverName,
			Time:         func() time.Time { return at },
			VerifyConnection: wantPeer(serverID, func(cs tls.ConnectionState) (string, error) {
				id, err := SPIFFEIDOf(cs.PeerCertificates[0])
				if err != nil {
					return "", err
				}
				return id.String(), nil
			}),
		},
		"spiffe id": {
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			// The chain is verified by VerifySVID in VerifyConnection, which
			// crypto/tls calls regardless of InsecureSkipVerify.
			InsecureSkipVerify: true,
			VerifyConnection:   wantPeer(serverID, bySVID),
		},
	}
}

// handshake runs a TLS handshake over net.Pipe and has the server send one
// byte, so that a client whose certificate the server refuses (which TLS 1.3
// reports only after the client's handshake) sees the failure.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, cc := net.Pipe()
	done := make(chan error, 1)
	// Closing the pipe, not the tls.Conn: a close_notify alert would block
	// on the unbuffered pipe until its 5-second deadline.
	go func() {
		defer sc.Close()
		s := tls.Server(sc, server)
		err := s.HandshakeContext(ctx)
		if err == nil {
			_, err = s.Write([]byte{1})
		}
		done <- err
	}()
	c := tls.Client(cc, client)
	clientErr = c.HandshakeContext(ctx)
	if clientErr == nil {
		_, clientErr = io.ReadFull(c, make([]byte, 1))
	}
	cc.Close()
	return <-done, clientErr
}

func TestMutualTLS(t *testing.T) {
	ca, other := newCA(t), newCA(t) // other has the same trust domain: only the root tells them apart
	roots := rootPool(ca)
	const (
		serverID = "spiffe://example.org/confidential-vm/server"
		clientID = "spiffe://example.org/confidential-vm/client"
	)
	server := workloadCert(t, ca, "server", "server.example.org")
	client := workloadCert(t, ca, "client", "client.example.org")
	foreignServer := workloadCert(t, other, "server", "server.example.org")
	foreignClient := workloadCert(t, other, "client", "client.example.org")
	// The intruder holds a certificate from the right CA, even with the
	// server's DNS name; only its SPIFFE ID gives it away.
	intruder := workloadCert(t, ca, "intruder", "server.example.org")
	expiry := client.Leaf.NotAfter.Add(time.Second)

	for _, tc := range []struct {
		name                 string
		server, client       tls.Certificate
		at                   time.Time
		wantServerRefuses    bool
		wantClientRefuses    bool
		wantUnknownAuthority bool
		wantInRefusal        string
	}{
		{name: "both from the CA", server: server, client: client, at: now},
		{name: "client from another CA", server: server, client: foreignClient, at: now, wantServerRefuses: true, wantUnknownAuthority: true},
		{name: "server from another CA", server: foreignServer, client: client, at: now, wantClientRefuses: true, wantUnknownAuthority: true},
		{name: "client with the wrong SPIFFE ID", server: server, client: intruder, at: now, wantServerRefuses: true, wantInRefusal: "peer is spiffe://example.org/confidential-vm/intruder"},
		{name: "server with the wrong SPIFFE ID", server: intruder, client: client, at: now, wantClientRefuses: true, wantInRefusal: "peer is spiffe://example.org/confidential-vm/intruder"},
		{name: "after expiry", server: server, client: client, at: expiry, wantClientRefuses: true, wantInRefusal: "expired"},
	} {
		for style, ccfg := range clientConfigs(tc.client, roots, tc.at, serverID, "server.example.org") {
			t.Run(tc.name+"/"+style, func(t *testing.T) {
				serverErr, clientErr := handshake(t, serverConfig(tc.server, roots, tc.at, clientID), ccfg)
				switch {
				case !tc.wantServerRefuses && !tc.wantClientRefuses:
					if serverErr != nil || clientErr != nil {
						t.Fatalf("handshake failed: server %v, client %v", serverErr, clientErr)
					}
					return
				case tc.wantServerRefuses:
					if serverErr == nil || clientErr == nil {
						t.Fatalf("server accepted: server %v, client %v", serverErr, clientErr)
					}
				case tc.wantClientRefuses:
					if clientErr == nil {
						t.Fatalf("client accepted: server %v", serverErr)
					}
				}
				refusal := serverErr
				if tc.wantClientRefuses {
					refusal = clientErr
				}
				var unknown x509.UnknownAuthorityError
				if tc.wantUnknownAuthority && !errors.As(refusal, &unknown) {
					t.Fatalf("refusal %v, want x509.UnknownAuthorityError", refusal)
				}
				if !strings.Contains(refusal.Error(), tc.wantInRefusal) {
					t.Fatalf("refusal %v, want it to mention %q", refusal, tc.wantInRefusal)
				}
			})
		}
	}
}

func TestIssueServerTLSLoopback(t *testing.T) {
	ca := newCA(t)
	key := p256(t)
	der, err := ca.IssueServer(key.Public(), []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: crypto.Signer(key)}},
		Time:         func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err == nil {
					c.Write([]byte("ok"))
				}
			}()
		}
	}()

	dial := func(at time.Time, roots *x509.CertPool) error {
		d := tls.Dialer{Config: &tls.Config{
			MinVersion: tls.VersionTLS13,
			RootCAs:    roots,
			ServerName: "127.0.0.1",
			Time:       func() time.Time { return at },
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "ok" {
			return fmt.Errorf("read %q", buf)
		}
		return nil
	}
	if err := dial(now, rootPool(ca)); err != nil {
		t.Fatalf("dial with the CA root: %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if err := dial(now, rootPool(newCA(t))); !errors.As(err, &unknown) {
		t.Fatalf("dial with another root = %v, want UnknownAuthorityError", err)
	}
	var invalid x509.CertificateInvalidError
	if err := dial(now.Add(2*time.Hour), rootPool(ca)); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
		t.Fatalf("dial after expiry = %v, want Expired", err)
	}
}
