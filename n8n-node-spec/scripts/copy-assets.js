// Copy the node icons next to the built nodes, where n8n looks for them.
const fs = require('fs');
const path = require('path');
for (const dir of ['Podrelay', 'PodrelayTrigger']) {
	fs.copyFileSync(path.join(__dirname, '..', 'nodes', 'Podrelay', 'podrelay.svg'), path.join(__dirname, '..', 'dist', 'nodes', dir, 'podrelay.svg'));
}
