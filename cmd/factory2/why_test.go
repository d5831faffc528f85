package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestWhyPrintsAnswerAndFailsOnError(t *testing.T) {
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		switch r.URL.Path {
		case "/api/v1/why/bash-1-1.fc42":
			w.Write([]byte("koji_build bash-1-1.fc42: SATISFIED\n"))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"message":"no event about x has been seen"}`))
		}
	}))
	defer srv.Close()

	var out, errb bytes.Buffer
	root := newRoot(strings.NewReader(""), &out, &errb)
	root.SetArgs([]string{"why", "bash-1-1.fc42", "--url", srv.URL, "--context", "c1", "--product-version", "fedora-42"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if out.String() != "koji_build bash-1-1.fc42: SATISFIED\n" {
		t.Fatalf("stdout %q", out.String())
	}
	if gotQuery != "context=c1&format=text&product_version=fedora-42" {
		t.Fatalf("query %q", gotQuery)
	}
	root = newRoot(strings.NewReader(""), &out, &errb)
	root.SetArgs([]string{"why", "x", "--url", srv.URL})
	err := root.ExecuteContext(context.Background())
	if err == nil || err.Error() != "no event about x has been seen" {
		t.Fatalf("err = %v", err)
	}
}
