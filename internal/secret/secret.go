// Package secret reads a secret (a password, a token) from a file or an
// environment variable, the two places factory2's configuration takes
// them from: a file is what a Kubernetes Secret or a systemd credential
// mounts, a variable what a shell or a unit's Environment= gives.
package secret

import (
	"fmt"
	"os"
	"strings"
)

// Read returns the secret in file, its final line break dropped, or, when
// file is empty, in the environment variable env. fileKey and envKey are
// the configuration keys that named them: errors say the key and the
// file or variable, never the secret. An empty secret is an error.
func Read(fileKey, file, envKey, env string) (string, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", fileKey, err)
		}
		s := strings.TrimRight(string(data), "\r\n")
		if s == "" {
			return "", fmt.Errorf("%s %s: empty", fileKey, file)
		}
		return s, nil
	}
	s, ok := os.LookupEnv(env)
	if !ok || s == "" {
		return "", fmt.Errorf("%s: environment variable %s is unset or empty", envKey, env)
	}
	return s, nil
}
