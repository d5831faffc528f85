package config

// The kafka: section is kclient.Security (TLS and SASL of every Kafka
// client); its keys are documented here, merged into docs.

func init() {
	for k, d := range kafkaDocs {
		docs[k] = d
	}
}

// EnvKafkaUsername overrides kafka.sasl.username, so that one file serves
// hosts that connect as different principals (a hooks host, the
// processors); the password's file or variable then holds that user's.
const EnvKafkaUsername = "FACTORY2_KAFKA_USERNAME"

var kafkaDocs = map[string]keyDoc{
	"kafka.tls.enabled": {doc: "Connect to the brokers over TLS. Every Kafka client of the process (processors, restore, " +
		"ingestion, watch, replay, topics) uses the kafka section. Empty section: plaintext, unauthenticated, " +
		"for a broker on a trusted network only."},
	"kafka.tls.ca_file": {doc: "PEM file of the CAs that sign the brokers' certificates; empty: the system's roots. " +
		"A relative path (as for every file of this section) is relative to the configuration file's directory."},
	"kafka.tls.cert_file":   {doc: "PEM client certificate, for brokers that ask for one (mutual TLS); with key_file."},
	"kafka.tls.key_file":    {doc: "PEM private key of cert_file."},
	"kafka.tls.server_name": {doc: "Name the brokers' certificates must carry; empty: the host of each broker's address."},
	"kafka.sasl.mechanism":  {doc: "SASL mechanism: SCRAM-SHA-256, SCRAM-SHA-512, PLAIN or OAUTHBEARER (a static token); empty: no SASL. PLAIN and OAUTHBEARER need TLS."},
	"kafka.sasl.username": {doc: "User of SCRAM and PLAIN (the principal User:<username> the ACLs name). " +
		"The environment variable " + EnvKafkaUsername + " overrides it."},
	"kafka.sasl.password_file": {doc: "File holding the password (one line), read at each authentication; " +
		"exactly one of password_file and password_env. Passwords are never written in the configuration file."},
	"kafka.sasl.password_env": {doc: "Name of the environment variable holding the password."},
	"kafka.sasl.token_file":   {doc: "File holding the OAUTHBEARER token, read at each authentication (so a rotated token is used by the next connection); exactly one of token_file and token_env."},
	"kafka.sasl.token_env":    {doc: "Name of the environment variable holding the OAUTHBEARER token."},
}
