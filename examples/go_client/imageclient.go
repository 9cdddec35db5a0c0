// Package imageclient is a careful Go client of the ImagePipeline SDXL text-to-image API
// (or ipmock): one generation, submitted once, polled no faster than the poll floor,
// Retry-After honoured, every image downloaded. The standard library only.
//
// docs/any-language.md wraps it for `ipmock fuzz`; put your own client in its place.
package imageclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	submitPath = "/sdxl/text2image/v1"
	statusPath = "/sdxl/text2image/v1/status/"
	retries    = 5
)

// answer is the part of a submit or status answer the client reads.
type answer struct {
	Status       string   `json:"status"`
	ID           string   `json:"id"`
	Error        string   `json:"error"`
	DownloadURLs []string `json:"download_urls"`
}

type client struct {
	base, key string
	pollFloor time.Duration
	http      http.Client
}

// Generate submits request (the JSON body) once and returns the images' bytes; its error
// names the failing step and carries the server's own words.
func Generate(ctx context.Context, baseURL, apiKey string, request []byte, pollFloor time.Duration) ([][]byte, error) {
	c := &client{base: strings.TrimRight(baseURL, "/"), key: apiKey, pollFloor: pollFloor}
	job, err := c.submit(ctx, request)
	if err != nil {
		return nil, err
	}
	for polls := 1; job.Status == "PENDING"; polls++ {
		step := fmt.Sprintf("status request %d of job %s", polls, job.ID)
		if err := wait(ctx, pollFloor, step); err != nil {
			return nil, err
		}
		got, body, err := c.get(ctx, c.base+statusPath+url.PathEscape(job.ID), step, true)
		if err != nil {
			return nil, err
		}
		if job, err = decode(got, body, step); err != nil {
			return nil, err
		}
	}
	if job.Status == "FAILURE" {
		return nil, fmt.Errorf("job failed: %s", job.Error)
	}
	if job.Status != "SUCCESS" {
		return nil, fmt.Errorf("unknown status %q", job.Status)
	}
	images := make([][]byte, 0, len(job.DownloadURLs))
	for n, link := range job.DownloadURLs {
		step := fmt.Sprintf("download %d of %d", n+1, len(job.DownloadURLs))
		got, body, err := c.get(ctx, link, step, false)
		if err != nil {
			return nil, err
		}
		if got.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: HTTP %d", step, got.StatusCode)
		}
		images = append(images, body)
	}
	return images, nil
}

// submit sends the request again only after a 429 or 503 (no job made then): any other
// failure after sending may have made a job, and a second submit could be charged twice.
func (c *client) submit(ctx context.Context, request []byte) (answer, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+submitPath, bytes.NewReader(request))
		if err != nil {
			return answer{}, fmt.Errorf("submit: %w", err)
		}
		req.Header.Set("API-Key", c.key)
		got, body, err := c.send(req)
		if err != nil {
			return answer{}, fmt.Errorf("submit: the answer was lost (%v); the job may exist, so it was not submitted again", err)
		}
		if (got.StatusCode == 429 || got.StatusCode == 503) && attempt < retries {
			if err := wait(ctx, retryAfter(got, time.Second), "submit"); err != nil {
				return answer{}, err
			}
			continue
		}
		if got.StatusCode >= 500 {
			return answer{}, fmt.Errorf("submit: HTTP %d after the request was sent; the job may exist, so it was not submitted again", got.StatusCode)
		}
		job, err := decode(got, body, "submit")
		if err != nil && got.StatusCode < 400 {
			return answer{}, fmt.Errorf("%v; the job may exist, so it was not submitted again", err)
		}
		return job, err
	}
}

// get fetches url, trying again after a broken connection, a 5xx or a 429, waiting
// Retry-After or the poll floor, whichever is longer.
func (c *client) get(ctx context.Context, link, step string, withKey bool) (*http.Response, []byte, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", step, err)
		}
		if withKey {
			req.Header.Set("API-Key", c.key)
		}
		got, body, err := c.send(req)
		why := ""
		pause := c.pollFloor
		switch {
		case err != nil:
			why = err.Error()
		case got.StatusCode == 429 || got.StatusCode >= 500:
			why = fmt.Sprintf("HTTP %d", got.StatusCode)
			if after := retryAfter(got, 0); after > pause {
				pause = after
			}
		default:
			return got, body, nil
		}
		if attempt == retries {
			return nil, nil, fmt.Errorf("%s: failed %d times, last: %s", step, attempt+1, why)
		}
		if err := wait(ctx, pause, step); err != nil {
			return nil, nil, err
		}
	}
}

// send makes one request and reads its whole body; a connection broken mid-body fails.
func (c *client) send(req *http.Request) (*http.Response, []byte, error) {
	got, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer got.Body.Close()
	body, err := io.ReadAll(got.Body)
	if err != nil {
		return nil, nil, err
	}
	return got, body, nil
}

// decode reads a JSON answer; an error status becomes an error with the server's words.
func decode(got *http.Response, body []byte, step string) (answer, error) {
	var job answer
	if err := json.Unmarshal(body, &job); err != nil {
		return answer{}, fmt.Errorf("%s: HTTP %d, the answer is not a JSON object", step, got.StatusCode)
	}
	if got.StatusCode >= 400 {
		return answer{}, fmt.Errorf("%s: %s (HTTP %d)", step, job.Error, got.StatusCode)
	}
	return job, nil
}

// retryAfter is the answer's Retry-After in whole seconds, else fallback.
func retryAfter(got *http.Response, fallback time.Duration) time.Duration {
	seconds, err := strconv.Atoi(got.Header.Get("Retry-After"))
	if err != nil || seconds < 0 {
		return fallback
	}
	return time.Duration(seconds) * time.Second
}

// wait sleeps, or fails when the deadline would pass first.
func wait(ctx context.Context, pause time.Duration, step string) error {
	if deadline, ok := ctx.Deadline(); ok && time.Now().Add(pause).After(deadline) {
		return fmt.Errorf("%s: gave up at the deadline", step)
	}
	timer := time.NewTimer(pause)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%s: gave up at the deadline", step)
	case <-timer.C:
		return nil
	}
}
