import type { INodeProperties, INodePropertyOptions } from 'n8n-workflow';

import spec from '../../spec.json';

/** One field of a podrelay request, as `flask --app app n8n-spec` describes it. */
export interface SpecField {
	name: string;
	displayName: string;
	required: boolean;
	type: string;
	integer?: boolean;
	min?: number;
	max?: number;
	minLength?: number;
	maxLength?: number;
	options?: string[];
	default?: string;
	allowOther?: boolean;
	file?: boolean;
	items?: SpecField[];
}

/** One n8n action: a resource, an operation, and the podrelay route it calls. */
export interface SpecAction {
	resource: string;
	operation: string;
	surface?: string;
	method: string;
	route: string;
	binaryOutput?: boolean;
	binaryInput?: string;
	fields?: SpecField[];
	query?: string[];
}

export const actions = spec.actions as SpecAction[];
export const finalStatuses = spec.finalStatuses as string[];

const OPERATION_NAMES: Record<string, string> = {
	create: 'Create',
	generate: 'Generate',
	edit: 'Edit',
	upscale: 'Upscale',
	removeBackground: 'Remove Background',
	transcribe: 'Transcribe',
	speech: 'Generate Speech',
	fromAudio: 'Generate From Audio',
	get: 'Get',
	list: 'Get Many',
	cancel: 'Cancel',
	download: 'Download',
};

/** What each operation does, for people and for an AI Agent using the node as a tool. */
const TOOL_DESCRIPTIONS: Record<string, string> = {
	chat: 'Generate a chat reply from an LLM on RunPod (messages in, the completion out)',
	images: 'Generate images from a text prompt; the result links each image',
	transcribe: 'Transcribe speech in an audio file (URL or binary) to text',
	embeddings: 'Turn text into embedding vectors for search or clustering',
	speech: 'Turn text into spoken audio; the result links the audio file',
	video: 'Generate a short video from a prompt (or an image); the result links the video',
	audio_video: 'Generate a video driven by an audio file; the result links the video',
	music: 'Generate music from a prompt; the result links the audio file',
	image_edit: 'Edit an image (URL or binary) as a prompt says; the result links the new image',
	upscale: 'Upscale an image (URL or binary) by 2x or 4x; the result links the larger image',
	background_removal: 'Remove the background of an image (URL or binary); the result links the cut-out',
	get: 'Get a podrelay job by its id: status, result, error',
	list: 'List recent podrelay jobs, optionally by status or surface',
	cancel: 'Cancel a podrelay job that has not finished',
	download: "Download a file of a finished job's result as binary data",
};

export function findAction(resource: string, operation: string): SpecAction {
	const action = actions.find((a) => a.resource === resource && a.operation === operation);
	if (!action) throw new Error(`No podrelay action ${resource} ${operation}`);
	return action;
}

function show(action: SpecAction) {
	return { show: { resource: [action.resource], operation: [action.operation] } };
}

function property(field: SpecField, name = field.name): INodeProperties {
	const base = { displayName: field.displayName, name };
	if (field.type === 'collection' && field.items) {
		return {
			...base,
			type: 'fixedCollection',
			typeOptions: { multipleValues: true },
			placeholder: `Add ${field.displayName.replace(/s$/, '')}`,
			default: {},
			options: [{ displayName: field.displayName.replace(/s$/, ''), name: 'items', values: field.items.map((item) => property(item)) }],
		};
	}
	if (field.options && !field.allowOther) {
		return {
			...base,
			type: 'options',
			options: field.options.map((value) => ({ name: value, value })),
			default: field.default ?? field.options[0],
		};
	}
	if (field.type === 'number') {
		return {
			...base,
			type: 'number',
			typeOptions: { minValue: field.min, maxValue: field.max, numberPrecision: field.integer ? 0 : 2 },
			default: field.min ?? 0,
		};
	}
	if (field.type === 'boolean') return { ...base, type: 'boolean', default: false };
	if (field.type === 'json' || field.type === 'list' || field.type === 'object') return { ...base, type: 'json', default: '' };
	return { ...base, type: 'string', default: field.default ?? '' };
}

/** Whether a field is sent as it is entered: the one an input binary property can fill is optional in the form. */
function entered(action: SpecAction, field: SpecField): boolean {
	return field.required && field.name !== action.binaryInput;
}

function binaryInputProperties(action: SpecAction): INodeProperties[] {
	if (!action.binaryInput) return [];
	const field = action.fields?.find((f) => f.name === action.binaryInput);
	const label = field?.displayName ?? action.binaryInput;
	return [
		{
			displayName: 'Input Binary Field',
			name: 'inputBinaryField',
			type: 'string',
			default: '',
			placeholder: 'data',
			hint: `Leave empty to send ${label} as a URL`,
			description: `The input item's binary property whose file is sent as ${label} (podrelay stores a large one and hands the worker a URL)`,
			displayOptions: show(action),
		},
		...(field?.required
			? [{ ...property(field), description: 'An https URL of the file (or set Input Binary Field)', displayOptions: show(action) }]
			: []),
	];
}

function actionProperties(action: SpecAction): INodeProperties[] {
	const fields = action.fields ?? [];
	const required = fields.filter((f) => entered(action, f)).map((f) => ({ ...property(f), required: true, displayOptions: show(action) }));
	const optional = fields.filter((f) => !f.required);
	const out: INodeProperties[] = [...binaryInputProperties(action), ...required];
	if (optional.length) {
		out.push({
			displayName: 'Additional Fields',
			name: 'additionalFields',
			type: 'collection',
			placeholder: 'Add Field',
			default: {},
			displayOptions: show(action),
			options: optional.map((f) => property(f)),
		});
	}
	return out;
}

const resources = [...new Set(actions.map((a) => a.resource))];

const waitOptions: INodeProperties[] = [
	{
		displayName: 'Wait for Completion',
		name: 'waitForCompletion',
		type: 'boolean',
		default: true,
		description: 'Whether to return the finished job (text as JSON, files as binary data) instead of the enqueued job',
		displayOptions: { show: { resource: resources.filter((r) => r !== 'Job') } },
	},
	{
		displayName: 'Max Wait (Seconds)',
		name: 'maxWait',
		type: 'number',
		default: 600,
		typeOptions: { minValue: 1, maxValue: 86400 },
		description: 'How long to wait for the job before failing',
		displayOptions: { show: { resource: resources.filter((r) => r !== 'Job'), waitForCompletion: [true] } },
	},
	{
		displayName: 'Idempotency Key',
		name: 'idempotencyKey',
		type: 'string',
		default: '',
		placeholder: 'invoice-1234-summary',
		description:
			'Sent as Idempotency-Key: a retry with the same key and the same request gets the first answer for 24 hours instead of starting a second GPU job. An expression of the execution and item index suits Retry On Fail. Leave empty to send none.',
		displayOptions: { show: { resource: resources.filter((r) => r !== 'Job') } },
	},
];

const jobProperties: INodeProperties[] = [
	{
		displayName: 'Job ID',
		name: 'jobId',
		type: 'string',
		required: true,
		default: '',
		displayOptions: { show: { resource: ['Job'], operation: ['get', 'cancel', 'download'] } },
	},
	{
		displayName: 'File Index',
		name: 'index',
		type: 'number',
		default: 0,
		typeOptions: { minValue: 0 },
		description: 'Which file of the result to download (0 is the first)',
		displayOptions: { show: { resource: ['Job'], operation: ['download'] } },
	},
	{
		displayName: 'Filters',
		name: 'filters',
		type: 'collection',
		placeholder: 'Add Filter',
		default: {},
		displayOptions: { show: { resource: ['Job'], operation: ['list'] } },
		options: [
			{ displayName: 'Status', name: 'status', type: 'options', default: '', options: (spec.jobStatuses as string[]).map((s) => ({ name: s, value: s })) },
			{ displayName: 'Surface', name: 'surface', type: 'options', default: '', options: (spec.surfaces as string[]).map((s) => ({ name: s, value: s })) },
			{ displayName: 'Limit', name: 'limit', type: 'number', default: 50, typeOptions: { minValue: 1 }, description: 'Max number of results to return' },
		],
	},
];

// Defaults of Resource and Operation come from the spec, which the lint cannot see.
/* eslint-disable n8n-nodes-base/node-param-default-missing */
export const properties: INodeProperties[] = [
	{
		displayName: 'Resource',
		name: 'resource',
		type: 'options',
		noDataExpression: true,
		options: resources.map((r) => ({ name: r, value: r })),
		default: resources[0],
	},
	...resources.map(
		(resource): INodeProperties => ({
			displayName: 'Operation',
			name: 'operation',
			type: 'options',
			noDataExpression: true,
			displayOptions: { show: { resource: [resource] } },
			options: actions
				.filter((a) => a.resource === resource)
				.map(
					(a): INodePropertyOptions => ({
						name: OPERATION_NAMES[a.operation] ?? a.operation,
						value: a.operation,
						action: `${OPERATION_NAMES[a.operation] ?? a.operation} ${resource.toLowerCase()}`,
						description: `${TOOL_DESCRIPTIONS[a.surface ?? a.operation] ?? a.operation} (${a.method} ${a.route})`,
					}),
				),
			default: actions.find((a) => a.resource === resource)!.operation,
		}),
	),
	/* eslint-enable n8n-nodes-base/node-param-default-missing */
	...actions.flatMap(actionProperties),
	...waitOptions,
	...jobProperties,
];
