package messages

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// fill sets every field v reaches to a random value: empty or zero about
// a third of the time (to reach omitempty and nil branches), strings from
// an alphabet with what JSON must escape.
func fill(r *rand.Rand, v reflect.Value, depth int) {
	if r.IntN(3) == 0 && depth > 0 && v.Kind() != reflect.Struct {
		v.SetZero()
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(randomString(r))
	case reflect.Int:
		v.SetInt(int64(r.IntN(2000) - 1000))
	case reflect.Int64:
		v.SetInt(r.Int64N(1e13))
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Float64:
		v.SetFloat(r.Float64() * 10)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(r, p.Elem(), depth+1)
		v.Set(p)
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(`{ "poll": "5s",  "name": "<a&b>" }`))
			return
		}
		n := r.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(r, s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for range r.IntN(4) {
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			fill(r, k, depth+1)
			fill(r, e, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			if r.IntN(4) > 0 {
				loc := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+1800), time.FixedZone("y", -7*3600)}[r.IntN(3)]
				v.Set(reflect.ValueOf(time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(loc)))
			}
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(r, v.Field(i), depth+1)
			}
		}
	default:
		panic("fill: no case for " + v.Type().String())
	}
}

func randomString(r *rand.Rand) string {
	parts := []string{"a", "vm-017", "Zz9", " ", `"`, `\`, "<", ">", "&", "\n", "\t", "\b", "\f", "\r", "\x01", "\x1f", "\x7f",
		"é", "日本", "\u2028", "\u2029", "\xff", "\xe2\x82", "😀", "/"}
	var b []byte
	for range r.IntN(8) {
		b = append(b, parts[r.IntN(len(parts))]...)
	}
	return string(b)
}

// TestEncodersMatchEncodingJSON: the hand-written encoders write exactly
// json.Marshal's bytes for every field of the hot types.
func TestEncodersMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range []reflect.Type{reflect.TypeFor[JobRecord](), reflect.TypeFor[Request](), reflect.TypeFor[Event](),
		reflect.TypeFor[Enrollment](), reflect.TypeFor[JobSpec](), reflect.TypeFor[ComputerEvent](), reflect.TypeFor[StepStats]()} {
		for i := range 3000 {
			v := reflect.New(typ)
			fill(r, v.Elem(), 0)
			want, err := json.Marshal(v.Interface())
			if err != nil {
				t.Fatalf("%s: json.Marshal: %v", typ, err)
			}
			for _, x := range []any{v.Interface(), v.Elem().Interface()} {
				got, ok := encodeFast(x)
				if !ok {
					t.Fatalf("%T has no fast encoder", x)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%s case %d:\n got %s\nwant %s", typ, i, got, want)
				}
			}
		}
	}
}

// BenchmarkEncodeJobRecord: a job's record as it ends ready (two steps).
func BenchmarkEncodeJobRecord(b *testing.B) {
	now := time.Now().UTC()
	yes := true
	c := Computer{Name: "vm-017", Provisioner: "vmware", Type: "virtualmachine", Address: "10.0.3.17"}
	rec := JobRecord{ID: "res-1042", State: StateReady, Attempt: 1, MaxAttempts: 3,
		Spec: JobSpec{Computer: Computer{Name: "vm-017"}, Image: Image{Name: "win7-base", OSFamily: "windows", OSVersion: "7", Sysprep: true}, MaxAttempts: 3, Reload: ReloadIfNeeded},
		Steps: []StepRecord{
			{Attempt: 1, Step: StepLoad, Outcome: OutcomeReady, Detail: "cloned from template win7-base", Worker: "loader-vmware/host-a/4711", Started: now, Finished: now, Reloaded: &yes},
			{Attempt: 1, Step: StepPostload, Outcome: OutcomeReady, Detail: "sysprep finished; rdp answers", Worker: "os-windows/host-b/815", Started: now, Finished: now},
		},
		Created: now, Updated: now, Reloaded: true, Enrolled: &c}
	for _, c := range []struct {
		name string
		f    func() []byte
	}{
		{"encoding/json", func() []byte { x, _ := json.Marshal(rec); return x }},
		{"Encode", func() []byte { return Encode(rec) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = c.f()
			}
		})
	}
}

// TestDecodeResultFastAgrees: the fast path decodes what encoding/json
// decodes, or declines; over results written by Encode (random fields,
// escapes and all) and hand-written edge cases.
func TestDecodeResultFastAgrees(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	fast := 0
	check := func(data []byte) {
		t.Helper()
		got, ok := decodeResultFast(data)
		var want Result
		err := json.Unmarshal(data, &want)
		if !ok {
			return
		}
		fast++
		if err != nil {
			t.Fatalf("fast path took %s, which encoding/json refuses: %v", data, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n fast %+v\n json %+v", data, got, want)
		}
	}
	for range 20000 {
		var res Result
		fill(r, reflect.ValueOf(&res).Elem(), 0)
		if r.IntN(2) == 0 { // the common shape
			res.Profile, res.LearnedHostKey, res.Evidence = nil, nil, nil
			res.Detail, res.Worker, res.JobID = "attempt 1: ok", "loader/host-a/4711", "res-1042"
			res.Outcome, res.Step, res.Reason = []Outcome{OutcomeReady, OutcomeRetry, OutcomeFail}[r.IntN(3)], StepPostload, "timeout"
		}
		b, _ := json.Marshal(res)
		check(b)
	}
	now := time.Date(2026, 12, 2, 9, 30, 1, 123456789, time.UTC)
	base, _ := json.Marshal(Result{JobID: "j1", Attempt: 1, Step: StepLoad, Outcome: OutcomeReady, Worker: "w", Started: now, Finished: now})
	for _, s := range []string{
		string(base), " " + string(base) + "\n", `{}`, `{"job_id":"j1"}`, `{"job_id":"j1","job_id":"j2"}`,
		`{"attempt":01}`, `{"attempt":-0}`, `{"attempt":-01}`, `{"attempt":1.0}`, `{"attempt":1e2}`, `{"attempt":99999999999999999999}`,
		`{"attempt":null}`, `{"job_id":null}`, `{"reloaded":null}`, `{"reloaded":true}`, `{"reloaded":false}`, `{"reloaded":tru}`,
		`{"started":"2026-12-02T09:30:01Z"}`, `{"started":"2026-12-02 09:30:01Z"}`, `{"started":"2026-12-02T09:30:01+25:00"}`,
		`{"Job_ID":"x"}`, `{"job_id":"a\"b"}`, `{"job_id":"é"}`, `{"job_id":"a"`, `{"job_id":"a",}`, `{"job_id":"a"} x`,
		`{"job_id" "a"}`, `{"attempt":}`, `{"profile":{}}`, `[]`, ``, `{"worker":"w","extra":1}`,
	} {
		check([]byte(s))
	}
	if fast < 5000 {
		t.Fatalf("the fast path took only %d of the results: it is not the common path", fast)
	}
}

func BenchmarkDecodeResult(b *testing.B) {
	now := time.Now().UTC()
	yes := true
	data, _ := json.Marshal(Result{JobID: "res-1042", Attempt: 1, Step: StepLoad, Outcome: OutcomeReady, Detail: "cloned from template win7-base",
		Worker: "loader-vmware/host-a/4711", Started: now, Finished: now, Reloaded: &yes})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Result
			_ = Decode(data, &r, false)
		}
	})
	b.Run("DecodeResult", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = DecodeResult(data)
		}
	})
}
