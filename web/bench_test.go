package web

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkStatus200 measures the JSON and the page of a client with 200
// circuits of 3 hops, over real HTTP on 127.0.0.1.
func BenchmarkStatus200(b *testing.B) {
	srv := newServer(b, &fixedSource{first: clientStatus(200)})
	for _, path := range []string{"/api/status", "/"} {
		b.Run(path, func(b *testing.B) {
			b.ReportAllocs()
			client := srv.Client()
			var n int64
			for b.Loop() {
				resp, err := client.Get(srv.URL + path)
				if err != nil {
					b.Fatal(err)
				}
				n, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
				}
			}
			b.ReportMetric(float64(n), "bytes/answer")
		})
	}
}
