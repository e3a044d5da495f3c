CREATE TABLE "attack_graph_edges" (
	"kind" text NOT NULL,
	"group_key" text DEFAULT '' NOT NULL,
	"from_id" bigint NOT NULL,
	"to_id" bigint NOT NULL,
	"ports" text[],
	"via" text NOT NULL,
	CONSTRAINT "attack_graph_edges_kind_group_key_from_id_to_id_pk" PRIMARY KEY("kind","group_key","from_id","to_id")
);
--> statement-breakpoint
CREATE TABLE "attack_graph_groups" (
	"security_group" text PRIMARY KEY NOT NULL,
	"hash" text NOT NULL,
	"members_hash" text NOT NULL,
	"edges" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attack_graph_nodes" (
	"asset_id" bigint PRIMARY KEY NOT NULL,
	"depth" integer NOT NULL,
	"sigma" double precision NOT NULL,
	"tau" double precision NOT NULL,
	"paths_through" double precision NOT NULL,
	"is_jewel" boolean NOT NULL,
	"jewel_hops" integer,
	"parent_id" bigint NOT NULL,
	"next_id" bigint,
	"finding_id" bigint,
	"issue_id" text,
	"edge_kind" text NOT NULL,
	"edge_ports" text[],
	"edge_via" text NOT NULL,
	"techniques" text[] NOT NULL,
	"confidence" text NOT NULL,
	"step_confidence" text NOT NULL,
	"next_step" jsonb,
	"choke_point" boolean DEFAULT false NOT NULL,
	"signature" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attack_graph_summary" (
	"name" text PRIMARY KEY NOT NULL,
	"full" boolean NOT NULL,
	"groups_changed" integer NOT NULL,
	"edges" integer NOT NULL,
	"nodes" integer NOT NULL,
	"jewels" integer NOT NULL,
	"jewels_reached" integer NOT NULL,
	"paths" double precision NOT NULL,
	"choke_points" bigint[] NOT NULL,
	"ip_hash" text NOT NULL,
	"unusable_rules" jsonb NOT NULL,
	"parameters" jsonb NOT NULL,
	"computed_at" timestamp with time zone NOT NULL,
	"duration_ms" integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attack_graph_tickets" (
	"ticket_key" text PRIMARY KEY NOT NULL,
	"paths_cut" double precision NOT NULL,
	"exact" boolean NOT NULL,
	"asset_ids" bigint[] NOT NULL
);
