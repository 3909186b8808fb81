package provision

import (
	"errors"
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strings"
)

var (
	userRE  = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	labelRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
	digits  = regexp.MustCompile(`^[0-9]+$`)
	pathRE  = regexp.MustCompile(`^/[A-Za-z0-9._/-]*$`)
)

// ValidateHost accepts an IPv4 or IPv6 address (without brackets or zone) or
// a DNS host name made of letters, digits, '-' and '.', and nothing else.
func ValidateHost(host string) error {
	if host == "" {
		return errors.New("host: required")
	}
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" {
			return errors.New("host: IPv6 zones are not supported; use an address without %zone")
		}
		return nil
	}
	if len(host) > 253 {
		return errors.New("host: longer than 253 characters")
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("host: %q is not an IP address or a host name (letters, digits, '-' and '.' only; no leading or trailing '-')", host)
		}
	}
	if digits.MatchString(labels[len(labels)-1]) {
		return fmt.Errorf("host: %q is neither a valid IP address nor a host name", host)
	}
	return nil
}

// ValidateUser accepts a conventional Unix login name: ^[a-z_][a-z0-9_-]{0,31}$.
func ValidateUser(user string) error {
	if !userRE.MatchString(user) {
		return fmt.Errorf("user: %q is not a valid login name (lower-case letters, digits, '_' and '-', starting with a letter or '_', at most 32)", user)
	}
	return nil
}

// ValidatePort accepts 1..65535.
func ValidatePort(port int) error {
	if port < 1 || port > 65535 {
		if port < 0 {
			return errors.New("port: enter a whole number from 1 to 65535")
		}
		return fmt.Errorf("port: %d is out of range 1-65535", port)
	}
	return nil
}

// Validate checks every field of the target and returns all problems, one
// per field.
func (t Target) Validate() error {
	var errs []error
	if err := ValidateHost(t.Host); err != nil {
		errs = append(errs, err)
	}
	if err := ValidatePort(t.Port); err != nil {
		errs = append(errs, err)
	}
	if err := ValidateUser(t.User); err != nil {
		errs = append(errs, err)
	}
	switch {
	case len(t.Auth.PrivateKeyPEM) == 0 && t.Auth.Password == "":
		errs = append(errs, errors.New("auth: a private key or a password is required"))
	case strings.ContainsRune(t.Auth.Password, 0):
		errs = append(errs, errors.New("auth: password contains a NUL byte"))
	}
	return errors.Join(errs...)
}

// validDir checks one Layout directory: absolute, clean, and made only of
// letters, digits, '.', '_', '-' and '/'.
func validDir(field, p string) error {
	if p == "" {
		return fmt.Errorf("%s: required", field)
	}
	if !pathRE.MatchString(p) {
		return fmt.Errorf("%s: %q must be an absolute path of letters, digits, '.', '_', '-' and '/'", field, p)
	}
	if path.Clean(p) != p || p == "/" {
		return fmt.Errorf("%s: %q must be a clean absolute path below / (no '..', '//' or trailing '/')", field, p)
	}
	for _, part := range strings.Split(p[1:], "/") {
		if strings.HasPrefix(part, "-") {
			return fmt.Errorf("%s: %q has a component starting with '-'", field, p)
		}
	}
	return nil
}

// ownedDir additionally requires the last element to name Gatehouse, because
// uninstall removes the whole directory.
func ownedDir(field, p string) error {
	if err := validDir(field, p); err != nil {
		return err
	}
	if !strings.Contains(path.Base(p), "gatehouse") {
		return fmt.Errorf("%s: %q must be a directory of its own whose name contains \"gatehouse\" (uninstall removes it)", field, p)
	}
	return nil
}

// Validate checks every directory of the layout.
func (l Layout) Validate() error {
	errs := []error{
		validDir("BinDir", l.BinDir),
		ownedDir("StateDir", l.StateDir),
		ownedDir("ConfigDir", l.ConfigDir),
		ownedDir("NginxDir", l.NginxDir),
		validDir("UnitDir", l.UnitDir),
	}
	if l.StateDir == l.ConfigDir && l.StateDir != "" {
		errs = append(errs, errors.New("ConfigDir: must differ from StateDir"))
	}
	return errors.Join(errs...)
}

// ValidateNginxConf checks the path of nginx's main configuration file.
func ValidateNginxConf(p string) error { return validDir("nginx_conf", p) }
