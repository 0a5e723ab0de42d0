package dcap

import "testing"

// TestLatestLevel: the relaunch check's "latest" TCB level is the highest
// in the order of Intel's TcbLevel::operator>, wherever the document puts
// it.
func TestLatestLevel(t *testing.T) {
	lvl := func(sgx0 uint8, pcesvn uint16, tdx0 uint8) TCBLevel {
		return TCBLevel{SGXComponents: [16]uint8{sgx0}, PCESVN: pcesvn, TDXComponents: [16]uint8{tdx0}, HasTDX: true}
	}
	for _, tt := range []struct {
		name   string
		levels []TCBLevel
		want   TCBLevel
	}{
		{"Intel's order", []TCBLevel{lvl(5, 13, 4), lvl(4, 13, 9)}, lvl(5, 13, 4)},
		{"SGX components first", []TCBLevel{lvl(4, 20, 9), lvl(5, 13, 4)}, lvl(5, 13, 4)},
		{"then PCESVN", []TCBLevel{lvl(5, 11, 9), lvl(5, 13, 4)}, lvl(5, 13, 4)},
		{"then TDX components", []TCBLevel{lvl(5, 13, 4), lvl(5, 13, 6), lvl(5, 13, 5)}, lvl(5, 13, 6)},
	} {
		ti := &TCBInfo{TCBLevels: tt.levels}
		if got := ti.latestLevel(); got.SGXComponents != tt.want.SGXComponents || got.PCESVN != tt.want.PCESVN || got.TDXComponents != tt.want.TDXComponents {
			t.Errorf("%s: latest %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestMatchSGXLevel: the SGX level is the first level the PCK TCB meets,
// even when the TD's TDX components match a later one.
func TestMatchSGXLevel(t *testing.T) {
	ti := &TCBInfo{ID: TCBInfoTDX, TDXModule: &TDXModule{}, TCBLevels: []TCBLevel{
		{SGXComponents: [16]uint8{5}, TDXComponents: [16]uint8{0, 0, 3}, HasTDX: true, Status: UpToDate},
		{SGXComponents: [16]uint8{4}, TDXComponents: [16]uint8{0, 0, 2}, HasTDX: true, Status: OutOfDate},
	}}
	m, err := ti.Match(PCKTCB{CompSVN: [16]uint8{5}}, &TDXTCB{TEETCBSVN: [16]byte{0, 0, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Index != 1 || m.SGXLevel.Status != UpToDate || m.Level.Status != OutOfDate {
		t.Errorf("match %+v", m)
	}
}
