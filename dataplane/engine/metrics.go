package engine

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves the statistics of the director whose control
// socket is socket in Prometheus's exposition formats (lvslab stats
// --listen).
func MetricsHandler(socket, director string) http.Handler {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(socket, director))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Collector exposes a running director's engine statistics to Prometheus,
// read over its control socket at each scrape (so it runs anywhere the
// socket is reachable: the root namespace, outside the lab).
type Collector struct {
	socket, director string
}

// NewCollector returns a collector of the director (named director in the
// metrics' labels) whose control socket is socket.
func NewCollector(socket, director string) *Collector {
	return &Collector{socket: socket, director: director}
}

var (
	descUp = prometheus.NewDesc("lvslab_director_up",
		"1 when the director's engine answered the scrape.", []string{"director"}, nil)
	descPackets = prometheus.NewDesc("lvslab_director_packets_total",
		"The engine's own counters: frames received, forwarded in and out, ICMP relayed and sent, segmented, fragmented.",
		[]string{"director", "counter"}, nil)
	descReassembly = prometheus.NewDesc("lvslab_director_reassembly_total",
		"IPv4 reassembly: fragments received, datagrams reassembled, and what was given up, by reason.",
		[]string{"director", "counter"}, nil)
	descDrops = prometheus.NewDesc("lvslab_director_drops_total",
		"Packets the director did not forward, by reason.", []string{"director", "reason"}, nil)
	descSocketPackets = prometheus.NewDesc("lvslab_director_socket_packets_total",
		"Frames the kernel passed to the engine's packet sockets.", []string{"director", "interface"}, nil)
	descSocketDrops = prometheus.NewDesc("lvslab_director_socket_drops_total",
		"Frames the kernel dropped for want of room in the engine's packet sockets.", []string{"director", "interface"}, nil)
)

// Describe sends the metrics' descriptions.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descPackets, descReassembly, descDrops, descSocketPackets, descSocketDrops} {
		ch <- d
	}
}

// Collect reads the statistics and sends them; a director that does not
// answer is lvslab_director_up 0.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s, err := ReadStats(c.socket)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0, c.director)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1, c.director)
	counters := func(d *prometheus.Desc, m map[string]uint64) {
		for k, n := range m {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(n), c.director, k)
		}
	}
	counters(descPackets, s.Counters())
	counters(descReassembly, s.Defrag)
	counters(descDrops, s.Drops())
	for _, ifc := range s.Interfaces {
		ch <- prometheus.MustNewConstMetric(descSocketPackets, prometheus.CounterValue, float64(ifc.Packets), c.director, ifc.Name)
		ch <- prometheus.MustNewConstMetric(descSocketDrops, prometheus.CounterValue, float64(ifc.Drops), c.director, ifc.Name)
	}
}
