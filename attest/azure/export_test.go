package azure

// TDXCacheLens reports how many parsed HCL reports and TD quotes v keeps.
func TDXCacheLens(v *TDXVerifier) (hcl, quotes int) { return v.hcl.Len(), v.quotes.Len() }
