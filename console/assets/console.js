// Draws every <canvas data-chart> with Chart.js; the page carries the data, so no request follows.
(() => {
  const palette = ['#c62828', '#ef6c00', '#1565c0', '#2e7d32', '#6a1b9a', '#00838f', '#5d4037'];
  function draw(canvas) {
    const spec = JSON.parse(canvas.dataset.chart);
    const datasets = spec.datasets.map((d, i) => ({
      label: d.label,
      data: d.data,
      borderColor: d.color || palette[i % palette.length],
      backgroundColor: spec.type === 'doughnut' ? spec.datasets[0].data.map((_, j) => palette[j % palette.length]) : (d.color || palette[i % palette.length]),
      tension: 0.2,
      pointRadius: spec.labels.length > 60 ? 0 : 2,
      spanGaps: true,
    }));
    if (spec.threshold) {
      datasets.push({ label: spec.threshold.label, data: spec.labels.map(() => spec.threshold.value), borderColor: '#555', borderDash: [6, 4], pointRadius: 0, backgroundColor: '#555' });
    }
    const axes = spec.type === 'doughnut' ? {} : { x: { stacked: !!spec.stacked }, y: { stacked: !!spec.stacked, beginAtZero: true } };
    // eslint-disable-next-line no-undef
    new Chart(canvas, { type: spec.type, data: { labels: spec.labels, datasets }, options: { responsive: true, maintainAspectRatio: false, animation: false, scales: axes } });
    canvas.dataset.drawn = 'true';
  }
  document.addEventListener('DOMContentLoaded', () => document.querySelectorAll('canvas[data-chart]').forEach(draw));
})();
